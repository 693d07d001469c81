//! Built-in object definitions, as a compact table transcribed from the OMA
//! LwM2M Object Registry (DDF XML). Object versions followed: 0 Security
//! 1.2, 1 Server 1.2, 2 Access Control 1.1, 3 Device 1.2, 4 Connectivity
//! Monitoring 1.3, 5 Firmware Update 1.1, 6 Location 1.0, 7 Connectivity
//! Statistics 1.0, 9 Software Management 1.0, 10 Cellular Connectivity 1.1,
//! 11 APN Connection Profile 1.1, 16 Portfolio 1.0, 19
//! BinaryAppDataContainer 1.0, 21 OSCORE 2.0, 3303 Temperature 1.1.
//!
//! Table syntax, one line each: `@ObjectID|Name|Version|S or M|M or O`
//! starts an object; `ResourceID|Name|Operations|S or M|M or O|Type` adds
//! a resource. Descriptions, ranges and units are left out.

use std::collections::BTreeMap;

use super::{ObjectDef, Operations, ResourceDef};
use crate::lwm2m::node::ResourceType;

const TABLE: &str = "
@0|LwM2M Security|1.2|M|M
0|LwM2M Server URI||S|M|String
1|Bootstrap-Server||S|M|Boolean
2|Security Mode||S|M|Integer
3|Public Key or Identity||S|M|Opaque
4|Server Public Key||S|M|Opaque
5|Secret Key||S|M|Opaque
6|SMS Security Mode||S|O|Integer
7|SMS Binding Key Parameters||S|O|Opaque
8|SMS Binding Secret Key(s)||S|O|Opaque
9|LwM2M Server SMS Number||S|O|String
10|Short Server ID||S|O|Integer
11|Client Hold Off Time||S|O|Integer
12|Bootstrap-Server Account Timeout||S|O|Integer
13|Matching Type||S|O|Unsigned Integer
14|SNI||S|O|String
15|Certificate Usage||S|O|Unsigned Integer
16|DTLS/TLS Ciphersuite||M|O|Unsigned Integer
17|OSCORE Security Mode||S|O|Objlnk
18|Groups To Use by Client||M|O|Unsigned Integer
19|Signature Algorithms Supported by Server||M|O|Unsigned Integer
20|Signature Algorithms To Use by Client||M|O|Unsigned Integer
21|Signature Algorithm Certs Supported by Server||M|O|Unsigned Integer
22|TLS 1.3 Features To Use by Client||S|O|Unsigned Integer
23|TLS Extensions Supported by Server||S|O|Unsigned Integer
24|TLS Extensions To Use by Client||S|O|Unsigned Integer
25|Secondary LwM2M Server URI||M|O|String
26|MQTT Server||S|O|Objlnk
27|LwM2M COSE Security||M|O|Objlnk
28|RDS Destination Port||S|O|Integer
29|RDS Source Port||S|O|Integer
30|RDS Application ID||S|O|String
@1|LwM2M Server|1.2|M|M
0|Short Server ID|R|S|M|Integer
1|Lifetime|RW|S|M|Integer
2|Default Minimum Period|RW|S|O|Integer
3|Default Maximum Period|RW|S|O|Integer
4|Disable|E|S|O|none
5|Disable Timeout|RW|S|O|Integer
6|Notification Storing When Disabled or Offline|RW|S|M|Boolean
7|Binding|RW|S|M|String
8|Registration Update Trigger|E|S|M|none
9|Bootstrap-Request Trigger|E|S|O|none
10|APN Link|RW|S|O|Objlnk
11|TLS-DTLS Alert Code|R|S|O|Unsigned Integer
12|Last Bootstrapped|R|S|O|Time
13|Registration Priority Order|R|S|O|Unsigned Integer
14|Initial Registration Delay Timer|RW|S|O|Unsigned Integer
15|Registration Failure Block|R|S|O|Boolean
16|Bootstrap on Registration Failure|R|S|O|Boolean
17|Communication Retry Count|RW|S|O|Unsigned Integer
18|Communication Retry Timer|RW|S|O|Unsigned Integer
19|Communication Sequence Delay Timer|RW|S|O|Unsigned Integer
20|Communication Sequence Retry Count|RW|S|O|Unsigned Integer
21|Trigger|RW|S|O|Boolean
22|Preferred Transport|RW|S|O|String
23|Mute Send|RW|S|O|Boolean
24|Alternate APN Links|RW|M|O|Objlnk
25|Supported Server Versions|RW|M|O|String
26|Default Notification Mode|RW|S|O|Integer
27|Profile ID Hash Algorithm|RW|S|O|Unsigned Integer
@2|LwM2M Access Control|1.1|M|O
0|Object ID|R|S|M|Integer
1|Object Instance ID|R|S|M|Integer
2|ACL|RW|M|O|Integer
3|Access Control Owner|RW|S|M|Integer
@3|Device|1.2|S|M
0|Manufacturer|R|S|O|String
1|Model Number|R|S|O|String
2|Serial Number|R|S|O|String
3|Firmware Version|R|S|O|String
4|Reboot|E|S|M|none
5|Factory Reset|E|S|O|none
6|Available Power Sources|R|M|O|Integer
7|Power Source Voltage|R|M|O|Integer
8|Power Source Current|R|M|O|Integer
9|Battery Level|R|S|O|Integer
10|Memory Free|R|S|O|Integer
11|Error Code|R|M|M|Integer
12|Reset Error Code|E|S|O|none
13|Current Time|RW|S|O|Time
14|UTC Offset|RW|S|O|String
15|Timezone|RW|S|O|String
16|Supported Binding and Modes|R|S|M|String
17|Device Type|R|S|O|String
18|Hardware Version|R|S|O|String
19|Software Version|R|S|O|String
20|Battery Status|R|S|O|Integer
21|Memory Total|R|S|O|Integer
22|ExtDevInfo|R|M|O|Objlnk
@4|Connectivity Monitoring|1.3|S|O
0|Network Bearer|R|S|M|Integer
1|Available Network Bearer|R|M|M|Integer
2|Radio Signal Strength|R|S|M|Integer
3|Link Quality|R|S|O|Integer
4|IP Addresses|R|M|M|String
5|Router IP Addresses|R|M|O|String
6|Link Utilization|R|S|O|Integer
7|APN|R|M|O|String
8|Cell ID|R|S|O|Integer
9|SMNC|R|S|O|Integer
10|SMCC|R|S|O|Integer
11|SignalSNR|R|S|O|Integer
12|LAC|R|S|O|Integer
13|Coverage Enhancement Level|R|S|O|Integer
@5|Firmware Update|1.1|S|O
0|Package|W|S|M|Opaque
1|Package URI|RW|S|M|String
2|Update|E|S|M|none
3|State|R|S|M|Integer
5|Update Result|R|S|M|Integer
6|PkgName|R|S|O|String
7|PkgVersion|R|S|O|String
8|Firmware Update Protocol Support|R|M|O|Integer
9|Firmware Update Delivery Method|R|S|M|Integer
10|Cancel|E|S|O|none
11|Severity|RW|S|O|Integer
12|Last State Change Time|R|S|O|Time
13|Maximum Defer Period|RW|S|O|Unsigned Integer
@6|Location|1.0|S|O
0|Latitude|R|S|M|Float
1|Longitude|R|S|M|Float
2|Altitude|R|S|O|Float
3|Radius|R|S|O|Float
4|Velocity|R|S|O|Opaque
5|Timestamp|R|S|M|Time
6|Speed|R|S|O|Float
@7|Connectivity Statistics|1.0|S|O
0|SMS Tx Counter|R|S|O|Integer
1|SMS Rx Counter|R|S|O|Integer
2|Tx Data|R|S|O|Integer
3|Rx Data|R|S|O|Integer
4|Max Message Size|R|S|O|Integer
5|Average Message Size|R|S|O|Integer
6|Start|E|S|M|none
7|Stop|E|S|M|none
8|Collection Period|RW|S|O|Integer
@9|LwM2M Software Management|1.0|M|O
0|PkgName|R|S|M|String
1|PkgVersion|R|S|M|String
2|Package|W|S|O|Opaque
3|Package URI|W|S|O|String
4|Install|E|S|M|none
5|Checkpoint|R|S|O|Objlnk
6|Uninstall|E|S|M|none
7|Update State|R|S|M|Integer
8|Update Supported Objects|RW|S|O|Boolean
9|Update Result|R|S|M|Integer
10|Activate|E|S|M|none
11|Deactivate|E|S|M|none
12|Activation State|R|S|M|Boolean
13|Package Settings|RW|S|O|Objlnk
14|User Name|W|S|O|String
15|Password|W|S|O|String
16|Status Reason|R|S|O|String
17|Software Component Link|R|M|O|Objlnk
18|Software Component tree length|R|S|O|Integer
@10|LwM2M Cellular Connectivity|1.1|S|O
0|SMSC address|RW|S|O|String
1|Disable radio period|RW|S|O|Integer
2|Module activation code|RW|S|O|String
3|Vendor specific extensions|R|S|O|Objlnk
4|PSM Timer|RW|S|O|Integer
5|Active Timer|RW|S|O|Integer
7|eDRX parameters for Iu mode|RW|S|O|Opaque
8|eDRX parameters for WB-S1 mode|RW|S|O|Opaque
9|eDRX parameters for NB-S1 mode|RW|S|O|Opaque
10|eDRX parameters for A/Gb mode|RW|S|O|Opaque
11|Activated Profile Names|R|M|M|Objlnk
12|Supported Power Saving Modes|R|S|O|Unsigned Integer
13|Active Power Saving Modes|RW|S|O|Unsigned Integer
14|Release Assistance Indication Usage|RW|S|O|Unsigned Integer
@11|LwM2M APN Connection Profile|1.1|M|O
0|Profile name|RW|S|M|String
1|APN|RW|S|O|String
2|Auto select APN by device|RW|S|O|Boolean
3|Enable status|RW|S|O|Boolean
4|Authentication Type|RW|S|M|Integer
5|User Name|RW|S|O|String
6|Secret|RW|S|O|String
7|Reconnect Schedule|RW|S|O|String
8|Validity (MCC, MNC)|RW|M|O|String
9|Connection establishment time|R|M|O|Time
10|Connection establishment result|R|M|O|Integer
11|Connection establishment reject cause|R|M|O|Integer
12|Connection end time|R|M|O|Time
13|TotalBytesSent|R|S|O|Integer
14|TotalBytesReceived|R|S|O|Integer
15|IP address|RW|M|O|String
16|Prefix length|RW|M|O|String
17|Subnet mask|RW|M|O|String
18|Gateway|RW|M|O|String
19|Primary DNS address|RW|M|O|String
20|Secondary DNS address|RW|M|O|String
21|QCI|R|S|O|Integer
22|Vendor specific extensions|R|S|O|Objlnk
23|TotalPacketsSent|R|S|O|Integer
24|PDN Type|RW|S|O|Integer
25|APN Rate Control|R|S|O|Integer
26|Serving PLMN Rate control|RW|S|O|Unsigned Integer
27|Uplink Time Unit|RW|S|O|Unsigned Integer
28|APN Rate Control for Exception Data|R|S|O|Integer
29|APN Exception Data Uplink Time Unit|RW|S|O|Unsigned Integer
30|Supported RAT Types|RW|M|O|Unsigned Integer
31|RDS Application ID|RW|M|O|String
32|RDS Destination Port|RW|M|O|Integer
33|RDS Source Port|RW|M|O|Integer
@16|Portfolio|1.0|M|O
0|Identity|RW|M|M|String
1|GetAuthData|E|S|O|none
2|AuthData|R|M|O|Opaque
3|AuthStatus|R|S|O|Integer
@19|BinaryAppDataContainer|1.0|M|O
0|Data|RW|M|M|Opaque
1|Data Priority|RW|S|O|Integer
2|Data Creation Time|RW|S|O|Time
3|Data Description|RW|S|O|String
4|Data Format|RW|S|O|String
5|App ID|RW|S|O|Integer
@21|OSCORE|2.0|M|O
0|OSCORE Master Secret||S|M|Opaque
1|OSCORE Sender ID||S|M|Opaque
2|OSCORE Recipient ID||S|M|Opaque
3|OSCORE AEAD Algorithm||S|O|Integer
4|OSCORE HMAC Algorithm||S|O|Integer
5|OSCORE Master Salt||S|O|Opaque
6|OSCORE ID Context||S|O|Opaque
@3303|Temperature|1.1|M|O
5700|Sensor Value|R|S|M|Float
5701|Sensor Units|R|S|O|String
5601|Min Measured Value|R|S|O|Float
5602|Max Measured Value|R|S|O|Float
5603|Min Range Value|R|S|O|Float
5604|Max Range Value|R|S|O|Float
5605|Reset Min and Max Measured Values|E|S|O|none
5750|Application Type|RW|S|O|String
5518|Timestamp|R|S|O|Time
6050|Fractional Timestamp|R|S|O|Float
6042|Measurement Quality Indicator|R|S|O|Integer
6049|Measurement Quality Level|R|S|O|Integer
";

/// The built-in definitions. The table is a constant checked by tests, so a
/// malformed line is a programming error; such a line is skipped rather
/// than allowed to panic.
pub(super) fn objects() -> Vec<ObjectDef> {
    let mut out: Vec<ObjectDef> = Vec::new();
    for line in TABLE.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('|').collect();
        if let Some(head) = line.strip_prefix('@') {
            let f: Vec<&str> = head.split('|').collect();
            let (Some(id), [_, name, version, multi, mand]) = (f[0].parse().ok(), f.as_slice())
            else {
                continue;
            };
            out.push(ObjectDef {
                id,
                name: (*name).to_owned(),
                version: (*version).to_owned(),
                multiple: *multi == "M",
                mandatory: *mand == "M",
                resources: BTreeMap::new(),
            });
        } else if let ([id, name, ops, multi, mand, kind], Some(obj)) =
            (f.as_slice(), out.last_mut())
        {
            let (Ok(id), Some(operations), Some(kind)) = (
                id.parse(),
                Operations::parse(ops),
                ResourceType::from_name(kind),
            ) else {
                continue;
            };
            obj.resources.insert(
                id,
                ResourceDef {
                    id,
                    name: (*name).to_owned(),
                    operations,
                    multiple: *multi == "M",
                    mandatory: *mand == "M",
                    kind,
                },
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_line_is_used() {
        let lines = TABLE.lines().filter(|l| !l.trim().is_empty()).count();
        let defs = objects();
        let used: usize = defs.iter().map(|o| 1 + o.resources.len()).sum();
        assert_eq!(lines, used);
    }

    #[test]
    fn spot_checks_against_the_registry() {
        let defs = objects();
        let res = |o: u16, r: u16| {
            defs.iter()
                .find(|d| d.id == o)
                .and_then(|d| d.resources.get(&r))
                .unwrap_or_else(|| panic!("/{o}/{r} missing"))
        };
        assert_eq!(res(10, 0).name, "SMSC address");
        assert_eq!(res(10, 11).name, "Activated Profile Names");
        assert!(
            defs.iter()
                .any(|d| d.id == 10 && !d.resources.contains_key(&6))
        );
        assert_eq!(res(21, 0).kind, ResourceType::Opaque);
        assert_eq!(res(1, 13).operations.to_string(), "R");
        assert_eq!(res(4, 8).kind, ResourceType::Integer);
        assert_eq!(res(3303, 6042).name, "Measurement Quality Indicator");
        assert_eq!(res(5, 10).kind, ResourceType::None);
    }
}
