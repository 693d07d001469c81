//! `nsh test --ets`: the OMA LwM2M 1.1 interoperability cases
//! (`LightweightM2M-1.1-int-*`, server side) shipped with nsh. The scripts
//! live under `stdlib/ets/` and are embedded here, so `nsh test --ets` runs
//! them from any directory; `--profile FILE` gives them expected values.

use std::path::Path;

use rhai::{Dynamic, Engine, Map};

/// The shipped ETS scripts: (path shown, source). Each runs with its own
/// client, so a case that ends the registration has a script of its own.
pub const SCRIPTS: &[(&str, &str)] = &[
    (
        "stdlib/ets/000_bootstrap.rhai",
        include_str!("../../stdlib/ets/000_bootstrap.rhai"),
    ),
    (
        "stdlib/ets/100_registration.rhai",
        include_str!("../../stdlib/ets/100_registration.rhai"),
    ),
    (
        "stdlib/ets/102_registration_update.rhai",
        include_str!("../../stdlib/ets/102_registration_update.rhai"),
    ),
    (
        "stdlib/ets/103_deregistration.rhai",
        include_str!("../../stdlib/ets/103_deregistration.rhai"),
    ),
    (
        "stdlib/ets/105_discarded_update.rhai",
        include_str!("../../stdlib/ets/105_discarded_update.rhai"),
    ),
    (
        "stdlib/ets/107_lifetime.rhai",
        include_str!("../../stdlib/ets/107_lifetime.rhai"),
    ),
    (
        "stdlib/ets/200_device_management.rhai",
        include_str!("../../stdlib/ets/200_device_management.rhai"),
    ),
    (
        "stdlib/ets/205_writes.rhai",
        include_str!("../../stdlib/ets/205_writes.rhai"),
    ),
    (
        "stdlib/ets/215_partial_update.rhai",
        include_str!("../../stdlib/ets/215_partial_update.rhai"),
    ),
    (
        "stdlib/ets/227_write_resource.rhai",
        include_str!("../../stdlib/ets/227_write_resource.rhai"),
    ),
    (
        "stdlib/ets/300_information_reporting.rhai",
        include_str!("../../stdlib/ets/300_information_reporting.rhai"),
    ),
    (
        "stdlib/ets/1630_create_delete.rhai",
        include_str!("../../stdlib/ets/1630_create_delete.rhai"),
    ),
];

/// Whether a script is a bootstrap case: a line `// ets: bootstrap` marks
/// it. Its client is the profile's `bootstrap_client`, a command like
/// --client's that starts the device with nsh as its LwM2M Bootstrap-Server
/// (`{uri}`); the script starts at once, before any Register.
pub fn is_bootstrap_case(source: &str) -> bool {
    source.lines().any(|l| l.trim() == "// ets: bootstrap")
}

/// The profile's `bootstrap_client` command, when it gives one.
pub fn bootstrap_client(profile: Option<&Map>) -> Option<String> {
    profile?
        .get("bootstrap_client")
        .and_then(|v| v.clone().into_string().ok())
}

/// Reads a profile: a JSON object or a Rhai object map (`#{…}`) of expected
/// values. The error names the file and what is wrong.
pub fn load_profile(path: &Path) -> Result<Map, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--profile: cannot read {}: {e}", path.display()))?;
    let bad = |e: String| {
        format!(
            "--profile: {}: not a JSON object or Rhai map: {e}",
            path.display()
        )
    };
    if text.trim_start().starts_with("#{") {
        // A constant expression only: a raw engine has no functions to call.
        let v = Engine::new_raw()
            .eval_expression::<Dynamic>(&text)
            .map_err(|e| bad(e.to_string()))?;
        let kind = v.type_name();
        return v
            .try_cast::<Map>()
            .ok_or_else(|| bad(format!("a {kind}, not a map")));
    }
    Engine::new()
        .parse_json(&text, true)
        .map_err(|e| bad(e.to_string()))
}

/// The profile as the scripts see it (`PROFILE`).
pub fn profile_value(profile: Option<&Map>) -> Dynamic {
    Dynamic::from_map(profile.cloned().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_script_compiles() {
        let engine = Engine::new();
        for (name, source) in SCRIPTS {
            if let Err(e) = engine.compile(*source) {
                panic!("{name}: {e}");
            }
        }
    }

    #[test]
    fn a_profile_is_json_or_a_rhai_map_and_bad_input_names_the_file() {
        let dir = std::env::temp_dir().join(format!("nsh-ets-profile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let json = dir.join("p.json");
        std::fs::write(&json, r#"{"manufacturer": "ACME", "lifetime": 300}"#).unwrap();
        let m = load_profile(&json).unwrap();
        assert_eq!(m["manufacturer"].clone().into_string().unwrap(), "ACME");
        let rhai = dir.join("p.rhai");
        std::fs::write(&rhai, r#"#{model: "X1"}"#).unwrap();
        assert_eq!(
            load_profile(&rhai).unwrap()["model"]
                .clone()
                .into_string()
                .unwrap(),
            "X1"
        );
        let bad = dir.join("bad.json");
        std::fs::write(&bad, "[1, 2").unwrap();
        let e = load_profile(&bad).unwrap_err();
        assert!(e.contains("bad.json"), "{e}");
        let e = load_profile(&dir.join("none.json")).unwrap_err();
        assert!(e.contains("cannot read"), "{e}");
    }
}
