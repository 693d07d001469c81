#!/usr/bin/env node
// A real LwM2M 1.0 client for nsh's tests: coap-node@0.2.5 with
// smartobject@1.5.3 (pure JavaScript).
//
// usage: node tests/peers/coapnode.js HOST PORT EP
//
// Environment:
//   LIFETIME   registration lifetime in seconds (default 300)
//   TEMP_MS    how often the temperature 3303/0/5700 changes (default 1000)
//
// Objects (coap-node adds Device 3/0 and Connectivity Monitoring 4/0 itself;
// coap-node reads and writes by the IPSO/LwM2M access rights of lwm2m-id):
//   /1/0     Server: 0 short server id 1, 1 lifetime, 2 pmin 0, 3 pmax 60,
//            6 notification storing false, 7 binding "U"
//   /3/0     Device: 0 manufacturer "nsh-test", 1 model "coapnode-model",
//            2 serial "CN-0001", 3 firmware "1.0.0", 4 reboot (E),
//            6 power sources 1, 7 voltage 3800, 11 error code 0,
//            13 current time (changes), 14 UTC offset "+00:00" (RW),
//            15 timezone "UTC" (RW), 16 binding "U", 17 device type
//            "nsh test device", 18 hardware version "1.0", 19 software
//            version "0.2.5"
//   /3303/0  Temperature: 5700 sensor value (changes every TEMP_MS: 20.0,
//            20.5, ... 24.5, 20.0, ...), 5701 units "Cel", 5601/5602 min/max
//            measured, 5605 reset min/max (E), 5750 application type
//            "nsh-writable" (RW string for read-back)
//   /3303/1  Temperature: 5700 -5.25 (constant), 5701 "Cel"
//
// stdout, one line each:
//   REGISTERED                registered (2.01 received)
//   REGISTER-FAILED <why>
//   EVENT write <oid>/<iid>/<rid> <json>    a server write
//   EVENT execute <oid>/<iid>/<rid> <json>  a server execute (its arguments)
//   DEREGISTERED              after SIGTERM/SIGINT, just before exit
// On SIGTERM (or SIGINT) it de-registers (node.deregister), then exits 0.
'use strict';

const SmartObject = require('smartobject');
const CoapNode = require('coap-node');

const [host = '127.0.0.1', port = '5683', ep = 'coapnode-ep'] = process.argv.slice(2);
const out = (line) => process.stdout.write(line + '\n');

const so = new SmartObject();
const state = { appType: 'nsh-writable', temp: 20.0, utcOffset: '+00:00', timezone: 'UTC' };

so.init('lwm2mServer', 0, {
  shortServerId: 1,
  lifetime: parseInt(process.env.LIFETIME || '300', 10),
  defaultMinPeriod: 0,
  defaultMaxPeriod: 60,
  notificationStoring: false,
  binding: 'U',
});

so.init('temperature', 0, {
  sensorValue: { read: (cb) => cb(null, state.temp) },
  units: 'Cel',
  minMeaValue: 20.0,
  maxMeaValue: 24.5,
  resetMinMaxMeaValues: { exec: (...args) => { const cb = args.pop(); out(`EVENT execute 3303/0/5605 ${JSON.stringify(args)}`); cb(null, { status: 204 }); } },
  5750: {
    read: (cb) => cb(null, state.appType),
    write: (v, cb) => { state.appType = String(v); out(`EVENT write 3303/0/5750 ${JSON.stringify(state.appType)}`); cb(null, state.appType); },
  },
});
so.init('temperature', 1, { sensorValue: -5.25, units: 'Cel' });

const node = new CoapNode(ep, so, { lifetime: parseInt(process.env.LIFETIME || '300', 10) });

// coap-node creates Device 3/0 with a few plain values; replace it whole
// (init() clears the instance) so that it also has executable and writable
// resources.
const device = {
  manuf: 'nsh-test',
  model: 'coapnode-model',
  serial: 'CN-0001',
  firmware: '1.0.0',
  reboot: { exec: (...args) => { const cb = args.pop(); out(`EVENT execute 3/0/4 ${JSON.stringify(args)}`); cb(null, { status: 204 }); } },
  availPwrSrc: 1,
  pwrSrcVoltage: 3800,
  errCode: 0,
  currTime: { read: (cb) => cb(null, Math.floor(Date.now() / 1000)) },
  UTCOffset: {
    read: (cb) => cb(null, state.utcOffset),
    write: (v, cb) => { state.utcOffset = String(v); out(`EVENT write 3/0/14 ${JSON.stringify(state.utcOffset)}`); cb(null, state.utcOffset); },
  },
  timezone: {
    read: (cb) => cb(null, state.timezone),
    write: (v, cb) => { state.timezone = String(v); out(`EVENT write 3/0/15 ${JSON.stringify(state.timezone)}`); cb(null, state.timezone); },
  },
  bindAndModes: 'U',
  devType: 'nsh test device',
  hwVer: '1.0',
  swVer: '0.2.5',
};
so.init('device', 0, device);

node.on('registered', () => out('REGISTERED'));
node.on('error', (e) => console.error('[coapnode] error:', e && e.message ? e.message : e));

// The temperature changes; reading it through the SmartObject lets coap-node
// compare it with the last reported value and notify observers.
const temps = [20.0, 20.5, 21.0, 21.5, 22.0, 22.5, 23.0, 23.5, 24.0, 24.5];
let i = 0;
const timer = setInterval(() => {
  i = (i + 1) % temps.length;
  state.temp = temps[i];
  so.read('temperature', 0, 'sensorValue', () => {});
}, parseInt(process.env.TEMP_MS || '1000', 10));

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  clearInterval(timer);
  const guard = setTimeout(() => { out('DEREGISTERED'); process.exit(0); }, 3000);
  node.deregister((err, rsp) => {
    clearTimeout(guard);
    if (err) console.error('[coapnode] deregister:', err.message || err);
    out('DEREGISTERED');
    process.exit(0);
  });
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

node.register(host, parseInt(port, 10), (err, rsp) => {
  if (err || !rsp || (rsp.status !== '2.01' && rsp.status !== '2.04')) {
    out(`REGISTER-FAILED ${err ? err.message || err : rsp && rsp.status}`);
  }
});
