// Drives the npm `socks` package against a SOCKS server for the integration tests.
// Prints one JSON object per line on stdout; exits non-zero on any error or after a deadline.
//
//   node socks_client.js connect PROXY_HOST PROXY_PORT TYPE DST_HOST DST_PORT PAYLOAD
//   node socks_client.js bind    PROXY_HOST PROXY_PORT TYPE PEER_HOST
//        prints {"event":"bound",...}; once a peer connects prints {"event":"established",...},
//        sends "from-client\n", waits for "from-peer\n", prints {"event":"data",...}
//   node socks_client.js udp     PROXY_HOST PROXY_PORT ECHO_HOST ECHO_PORT PAYLOAD
'use strict';

const dgram = require('dgram');
const { SocksClient } = require('socks');

const DEADLINE_MS = Number(process.env.FWGATE_IT_NODE_DEADLINE_MS || 30000);
setTimeout(() => fail(new Error(`deadline of ${DEADLINE_MS} ms passed`)), DEADLINE_MS).unref();

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function fail(err) {
  emit({ event: 'error', message: String(err && err.message ? err.message : err) });
  process.exit(2);
}

function readUntil(socket, wanted) {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const onData = (chunk) => {
      got = Buffer.concat([got, chunk]);
      if (got.length >= wanted.length) {
        socket.off('data', onData);
        resolve(got);
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('end', () => resolve(got));
  });
}

async function doConnect([proxyHost, proxyPort, type, dstHost, dstPort, payload]) {
  const info = await SocksClient.createConnection({
    proxy: { host: proxyHost, port: Number(proxyPort), type: Number(type) },
    command: 'connect',
    destination: { host: dstHost, port: Number(dstPort) },
    timeout: 10000,
  });
  const wanted = Buffer.from(payload);
  const reply = readUntil(info.socket, wanted);
  info.socket.write(wanted);
  const got = await reply;
  emit({ event: 'echo', data: got.toString() });
  info.socket.destroy();
}

async function doBind([proxyHost, proxyPort, type, peerHost]) {
  const client = new SocksClient({
    proxy: { host: proxyHost, port: Number(proxyPort), type: Number(type) },
    command: 'bind',
    destination: { host: peerHost, port: 0 },
    timeout: 20000,
  });
  const done = new Promise((resolve, reject) => {
    client.on('error', reject);
    client.on('bound', (info) => {
      emit({ event: 'bound', host: info.remoteHost.host, port: info.remoteHost.port });
    });
    client.on('established', async (info) => {
      emit({ event: 'established', host: info.remoteHost.host, port: info.remoteHost.port });
      try {
        const reply = readUntil(info.socket, Buffer.from('from-peer\n'));
        info.socket.write('from-client\n');
        const got = await reply;
        emit({ event: 'data', data: got.toString() });
        info.socket.end();
        resolve();
      } catch (e) {
        reject(e);
      }
    });
  });
  client.connect();
  await done;
}

async function doUdp([proxyHost, proxyPort, echoHost, echoPort, payload]) {
  // createConnection() accepts only CONNECT; the other commands go through a client instance.
  const client = new SocksClient({
    proxy: { host: proxyHost, port: Number(proxyPort), type: 5 },
    command: 'associate',
    destination: { host: '0.0.0.0', port: 0 },
    timeout: 10000,
  });
  const info = await new Promise((resolve, reject) => {
    client.on('error', reject);
    client.on('established', resolve);
    client.connect();
  });
  emit({ event: 'associated', host: info.remoteHost.host, port: info.remoteHost.port });
  const udp = dgram.createSocket('udp4');
  await new Promise((resolve) => udp.bind(0, '127.0.0.1', resolve));
  const frame = SocksClient.createUDPFrame({
    remoteHost: { host: echoHost, port: Number(echoPort) },
    data: Buffer.from(payload),
  });
  const answer = new Promise((resolve) => {
    udp.on('message', (msg, rinfo) => {
      const parsed = SocksClient.parseUDPFrame(msg);
      resolve({ parsed, rinfo });
    });
  });
  // UDP may drop a datagram: send up to three times, one second apart.
  let sent = 0;
  const sendOnce = () => {
    if (sent >= 3) return;
    sent += 1;
    udp.send(frame, info.remoteHost.port, info.remoteHost.host);
  };
  sendOnce();
  const timer = setInterval(sendOnce, 1000);
  const { parsed, rinfo } = await answer;
  clearInterval(timer);
  emit({
    event: 'datagram',
    data: parsed.data.toString(),
    from: { host: parsed.remoteHost.host, port: parsed.remoteHost.port },
    relay: { address: rinfo.address, port: rinfo.port },
    sent,
  });
  udp.close();
  info.socket.destroy();
}

const [mode, ...args] = process.argv.slice(2);
const modes = { connect: doConnect, bind: doBind, udp: doUdp };
if (!modes[mode]) fail(new Error(`unknown mode ${mode}`));
modes[mode](args).then(() => process.exit(0), fail);
