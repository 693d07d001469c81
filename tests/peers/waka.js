#!/usr/bin/env node
// A real LwM2M 1.0 client for nsh's tests: the wakatiwai client (Wakaama core,
// C) from node-red-contrib-lwm2m@2.12.3, run without Node-RED.
//
// usage: [CPORT=56930] node tests/peers/waka.js HOST PORT EP
//
// Environment:
//   CPORT       the client's own UDP port (default: a free port picked here)
//   LIFETIME    registration lifetime in seconds (default 300; a server's
//               Write of /1/x/1 below 30 is raised to 30 by the package)
//   TEMP_MS     how often the temperature 3303/0/5700 changes (default 1000)
//   RECONNECT_S when the C client stops (a failed registration Update ends
//               it), start it again after this many seconds (default 60)
//   WAKA_LOG=1  pass the C client's stderr through
//   WAKA_DUMP=1 also make the C client dump every packet (implies WAKA_LOG)
//   WAKA_DUP_OBJECTS=1  keep the package's duplicated custom objects (its
//               Register then lists </3303/0>,</3303/1> twice)
//
// Objects (besides Security 0, Server 1 and ACL 2 from the package):
//   /3/0     Device, fixed values: 0 manufacturer "nsh-test", 1 model
//            "waka-model", 2 serial "WAKA-0001", 3 firmware "1.0.0",
//            4 reboot (E), 5 factory reset (E), 6/7/8 power sources (multiple),
//            9 battery 87, 10 memory free 15, 11 error code 0, 12 reset error
//            code (E), 13 current time (changes), 14 UTC offset "+00:00" (RW),
//            15 timezone "UTC" (RW), 16 binding "U", 17 device type,
//            18 hardware version "1.0", 19 software version "2.12.3",
//            20 battery status 0, 21 memory total 64
//   /3303/0  Temperature: 5700 sensor value (FLOAT, changes every TEMP_MS:
//            20.0, 20.5, ... 24.5, 20.0, ...), 5701 units "Cel", 5601 min
//            measured 20.0, 5602 max measured 24.5, 5605 reset min/max (E),
//            5750 application type "nsh-writable" (RW string for read-back)
//   /3303/1  Temperature: 5700 -5.25 (constant), 5701 "Cel"
//
// stdout, one line each (tests can wait for them):
//   STARTED ep=EP cport=N server=HOST:PORT
//   STATE <state>             every state change of the C client
//   READY                     registered (state "ready")
//   EVENT <type> <uri> <json> a server write/execute/create/delete
//   DEREGISTERED              after SIGTERM/SIGINT, just before exit
// On SIGTERM (or SIGINT) it de-registers, then exits 0.
'use strict';

const path = require('path');
const os = require('os');
const fs = require('fs');
const dgram = require('dgram');
const EventEmitter = require('events');
const common = require('node-red-contrib-lwm2m/dist/lwm2m-common');

const [host = '127.0.0.1', port = '5683', ep = 'waka-ep'] = process.argv.slice(2);
const out = (line) => process.stdout.write(line + '\n');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.on('error', reject);
    s.bind(0, '0.0.0.0', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

const objects = {
  3: {
    0: {
      0: { type: 'STRING', acl: 'R', value: 'nsh-test' },
      1: { type: 'STRING', acl: 'R', value: 'waka-model' },
      2: { type: 'STRING', acl: 'R', value: 'WAKA-0001' },
      3: { type: 'STRING', acl: 'R', value: '1.0.0' },
      4: { type: 'FUNCTION', acl: 'E' },
      5: { type: 'FUNCTION', acl: 'E' },
      6: { type: 'MULTIPLE_RESOURCE', acl: 'R', value: [1, 5] },
      7: { type: 'MULTIPLE_RESOURCE', acl: 'R', value: [3800, 5000] },
      8: { type: 'MULTIPLE_RESOURCE', acl: 'R', value: [125, 900] },
      9: { type: 'INTEGER', acl: 'R', value: 87 },
      10: { type: 'INTEGER', acl: 'R', value: 15 },
      11: { type: 'INTEGER', acl: 'R', value: 0 },
      12: { type: 'FUNCTION', acl: 'E' },
      13: { type: 'INTEGER', acl: 'R', value: { get() { return Math.floor(Date.now() / 1000); } } },
      14: { type: 'STRING', acl: 'RW', value: '+00:00' },
      15: { type: 'STRING', acl: 'RW', value: 'UTC' },
      16: { type: 'STRING', acl: 'R', value: 'U' },
      17: { type: 'STRING', acl: 'R', value: 'nsh test device' },
      18: { type: 'STRING', acl: 'R', value: '1.0' },
      19: { type: 'STRING', acl: 'R', value: '2.12.3' },
      20: { type: 'INTEGER', acl: 'R', value: 0 },
      21: { type: 'INTEGER', acl: 'R', value: 64 },
    },
  },
  // Firmware Update (object 5), push method: a written package moves State
  // to Downloaded (2); Update (5/0/2) moves it to Updating (3), then back to
  // Idle with Update Result 1 (success) and a new firmware version.
  5: {
    0: {
      0: { type: 'OPAQUE', acl: 'W', value: Buffer.alloc(0) },
      1: { type: 'STRING', acl: 'RW', value: '' },
      2: { type: 'FUNCTION', acl: 'E' },
      3: { type: 'INTEGER', acl: 'R', value: 0 },
      5: { type: 'INTEGER', acl: 'R', value: 0 },
    },
  },
  3303: {
    0: {
      5601: { type: 'FLOAT', acl: 'R', value: 20.0 },
      5602: { type: 'FLOAT', acl: 'R', value: 24.5 },
      5605: { type: 'FUNCTION', acl: 'E' },
      5700: { type: 'FLOAT', acl: 'R', value: 20.0 },
      5701: { type: 'STRING', acl: 'R', value: 'Cel' },
      5750: { type: 'STRING', acl: 'RW', value: 'nsh-writable' },
    },
    1: {
      5700: { type: 'FLOAT', acl: 'R', value: -5.25 },
      5701: { type: 'STRING', acl: 'R', value: 'Cel' },
    },
  },
};

async function main() {
  const cport = process.env.CPORT ? parseInt(process.env.CPORT, 10) : await freePort();
  const dump = process.env.WAKA_DUMP === '1';
  const c = new EventEmitter();
  const credentialFilePath = path.join(os.tmpdir(), `waka_${process.pid}_${ep.replace(/[^\w.-]/g, '_')}_cred.json`);
  Object.assign(c, {
    clientName: ep, clientPort: cport, useIPv4: true,
    serverHost: host, serverPort: parseInt(port, 10),
    enableDTLS: !!process.env.PSK_ID, pskIdentity: process.env.PSK_ID || '', presharedKey: process.env.PSK_KEY_HEX || '', serverId: 99,
    lifetimeSec: parseInt(process.env.LIFETIME || '300', 10),
    reconnectSec: parseInt(process.env.RECONNECT_S || '0', 10), requestBootstrap: process.env.BOOTSTRAP === '1', saveProvisionedConfig: false,
    redirectLwm2mClientLog: dump || process.env.WAKA_LOG === '1', dumpLwm2mMessages: dump,
    credentialFilePath, secret: 'secret',
    log: (...a) => console.error('[waka]', ...a), debug: () => {}, trace: () => {},
    error: (...a) => console.error('[waka]', ...a), warn: (...a) => console.error('[waka]', ...a),
    definitions: {},
  });
  c.on('clientStateChanged', (state) => {
    out(`STATE ${state}`);
    if (state === 'ready') out('READY');
  });
  c.on('object-event', (ev) => {
    if (ev.remote && ev.uri === '/5/0/0' && ev.eventType === 'updated') {
      c.objectStore.write('/5/0/3', 2, false).catch((e) => console.error('[waka] fw', e));
    }
    if (ev.remote && ev.uri === '/5/0/2' && ev.eventType === 'executed') {
      c.objectStore.write('/5/0/3', 3, false)
        .then(() => new Promise((r) => setTimeout(r, 300)))
        .then(() => c.objectStore.write('/3/0/3', '2.0.0', false))
        .then(() => c.objectStore.write('/5/0/5', 1, false))
        .then(() => c.objectStore.write('/5/0/3', 0, false))
        .catch((e) => console.error('[waka] fw', e));
    }
    if (ev.remote) {
      let v = ev.value;
      if (v && typeof v.toJSON === 'function') v = v.toJSON();
      else if (Buffer.isBuffer(v)) v = v.toString('hex');
      out(`EVENT ${ev.eventType} ${ev.uri} ${JSON.stringify(v === undefined ? null : v)}`);
    }
  });
  c.objectStore = new common.LwM2MObjectStore(c);
  c.client = new common.LwM2MClientProxy(c);
  const repo = await new common.ResourceRepositoryBuilder([objects], true, credentialFilePath, c.secret).build(c);
  // The package lists each custom object twice in the client's -o argument
  // (numbers and strings mixed up), so the Register payload would carry
  // </3303/0>,</3303/1> twice. Keep one of each unless asked not to.
  if (process.env.WAKA_DUP_OBJECTS !== '1') {
    repo.extraObjectIdArray = [...new Set(repo.extraObjectIdArray.map(Number))];
  }
  c.objectStore.repo = repo;

  let i = 0;
  const temps = [20.0, 20.5, 21.0, 21.5, 22.0, 22.5, 23.0, 23.5, 24.0, 24.5];
  const timer = setInterval(() => {
    i = (i + 1) % temps.length;
    c.objectStore.write('/3303/0/5700', temps[i], false).catch((e) => console.error('[waka] temp', e));
  }, parseInt(process.env.TEMP_MS || '1000', 10));

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    clearInterval(timer);
    // The C client sends its De-register on SIGINT; don't wait forever.
    const guard = setTimeout(() => { out('DEREGISTERED'); process.exit(0); }, 3000);
    c.client.shutdown({ deregister: true }).then(() => {
      clearTimeout(guard);
      fs.rmSync(credentialFilePath, { force: true });
      out('DEREGISTERED');
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  c.client.start();
  out(`STARTED ep=${ep} cport=${cport} server=${host}:${port}`);
}

main().catch((e) => {
  console.error('[waka] failed:', e);
  process.exit(1);
});
