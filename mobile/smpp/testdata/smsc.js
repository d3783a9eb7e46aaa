// A small SMSC for the mobile/smpp tests, built on the npm "smpp" package so
// the client is checked against an implementation that is not ours.
//
// Control: one JSON command per line on stdin; one JSON event per line on
// stdout. Arguments: --port N (0 = any), --tls KEY CERT.
//
// Commands:
//   {"cmd":"mode","submit":"ok"}                 answer every submit_sm with a new message id
//   {"cmd":"mode","submit":"throttle","n":3}     the next n submit_sm get ESME_RTHROTTLED
//   {"cmd":"mode","submit":"status","status":11,"n":1}  the next n get that command_status
//   {"cmd":"mode","submit":"silent","n":1}       the next n get no answer at all
//   {"cmd":"mode","submit":"drop","n":3}         the next n are taken in unanswered, then the connection is cut
//   any mode with "after":k                      answer k more submit_sm normally first
//   {"cmd":"quiet","on":true}                    report submits only as counts (for benchmarks)
//   {"cmd":"deliver", "source":..., "dest":..., "data_coding":0, "esm_class":0, "sm_hex":"...", "payload_hex":"..."}
//        optional: "source_ton", "dest_ton", "registered_delivery", "user_message_reference" (a number)
//   {"cmd":"receipt", "message_id":..., "stat":"DELIVRD", "err":"000", "source":..., "dest":..., "tlvs":true}
//   {"cmd":"enquire_link"}                       the SMSC asks the client
//   {"cmd":"unbind"}                             the SMSC unbinds the client
//   {"cmd":"drop"}                               cut every connection
//   {"cmd":"count"}                              report the submit count
'use strict';

const fs = require('fs');
const readline = require('readline');
const smpp = require('smpp');

// Keep the raw octets of short_message and message_payload: the tests check
// exact bytes, and the library decodes them in place.
const origFilter = smpp.PDU.prototype._filter;
smpp.PDU.prototype._filter = function (func) {
  if (func === 'decode') {
    if (Buffer.isBuffer(this.short_message)) this._raw_sm = Buffer.from(this.short_message);
    if (Buffer.isBuffer(this.message_payload)) this._raw_payload = Buffer.from(this.message_payload);
  }
  return origFilter.call(this, func);
};

const args = process.argv.slice(2);
let port = 0;
let tlsOpts = null;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--port') port = Number(args[++i]);
  else if (args[i] === '--tls') tlsOpts = { key: fs.readFileSync(args[++i]), cert: fs.readFileSync(args[++i]) };
}

function emit(ev) {
  process.stdout.write(JSON.stringify(ev) + '\n');
}

let mode = { submit: 'ok', n: 0, status: 0, after: 0 };
let quiet = false;
let submits = 0;
let nextID = 0x1000;
let sessionSeq = 0;
const sessions = new Set();

function takeMode() {
  if (mode.submit === 'ok') return 'ok';
  if (mode.after > 0) {
    mode.after--;
    return 'ok';
  }
  const m = mode.submit;
  if (mode.n > 0 && --mode.n === 0) {
    const st = mode.status;
    mode = { submit: 'ok', n: 0, status: 0, after: 0 };
    return { m, st };
  }
  return { m, st: mode.status };
}

const onSession = function (session) {
  const sid = ++sessionSeq;
  session.sid = sid;
  session.bound = null;
  session.held = 0;
  sessions.add(session);
  session.on('error', (e) => emit({ ev: 'error', session: sid, error: String(e) }));
  session.on('close', () => {
    sessions.delete(session);
    emit({ ev: 'close', session: sid });
  });
  const bind = (kind) => (pdu) => {
    if (pdu.system_id !== 'smsrouter' || pdu.password !== 'secret') {
      session.send(pdu.response({ command_status: smpp.ESME_RINVPASWD }));
      emit({ ev: 'bind_refused', session: sid, kind, system_id: pdu.system_id });
      return;
    }
    session.bound = kind;
    session.send(pdu.response({ system_id: 'nodesmsc' }));
    emit({ ev: 'bind', session: sid, kind, system_id: pdu.system_id, system_type: pdu.system_type,
      interface_version: pdu.interface_version, addr_ton: pdu.addr_ton, addr_npi: pdu.addr_npi });
  };
  session.on('bind_transceiver', bind('transceiver'));
  session.on('bind_transmitter', bind('transmitter'));
  session.on('bind_receiver', bind('receiver'));
  session.on('enquire_link', (pdu) => {
    session.send(pdu.response());
    emit({ ev: 'enquire_link', session: sid });
  });
  session.on('unbind', (pdu) => {
    session.send(pdu.response());
    emit({ ev: 'unbind', session: sid });
    session.close();
  });
  session.on('deliver_sm_resp', (pdu) => emit({ ev: 'deliver_resp', session: sid, seq: pdu.sequence_number, status: pdu.command_status }));
  session.on('data_sm_resp', (pdu) => emit({ ev: 'deliver_resp', session: sid, seq: pdu.sequence_number, status: pdu.command_status }));
  session.on('enquire_link_resp', (pdu) => emit({ ev: 'enquire_link_resp', session: sid, status: pdu.command_status }));
  session.on('generic_nack', (pdu) => emit({ ev: 'generic_nack', session: sid, seq: pdu.sequence_number, status: pdu.command_status }));
  session.on('submit_sm', (pdu) => {
    submits++;
    const m = takeMode();
    let id = null;
    let status = 0;
    if (m === 'ok') {
      id = (nextID++).toString(16).toUpperCase();
    } else if (m.m === 'throttle') {
      status = smpp.ESME_RTHROTTLED;
    } else if (m.m === 'status') {
      status = m.st;
    }
    if (!quiet) {
      const sm = pdu.short_message || {};
      emit({
        ev: 'submit', session: sid, seq: pdu.sequence_number, n: submits,
        source_addr: pdu.source_addr, source_addr_ton: pdu.source_addr_ton, source_addr_npi: pdu.source_addr_npi,
        destination_addr: pdu.destination_addr, dest_addr_ton: pdu.dest_addr_ton, dest_addr_npi: pdu.dest_addr_npi,
        esm_class: pdu.esm_class, data_coding: pdu.data_coding, registered_delivery: pdu.registered_delivery,
        validity_period: pdu.validity_period, service_type: pdu.service_type,
        user_message_reference: pdu.user_message_reference === undefined ? null : pdu.user_message_reference,
        sm_hex: pdu._raw_sm ? pdu._raw_sm.toString('hex') : '',
        payload_hex: pdu._raw_payload ? pdu._raw_payload.toString('hex') : '',
        text: typeof sm.message === 'string' ? sm.message : null,
        udh_hex: (sm.udh || []).map((u) => u.toString('hex')),
        action: m === 'ok' ? 'ok' : m.m, message_id: id,
      });
    }
    if (m === 'ok' || m.m === 'throttle' || m.m === 'status') {
      session.send(pdu.response(status ? { command_status: status } : { message_id: id }));
      return;
    }
    if (m.m === 'drop') {
      session.held++;
      if (mode.submit !== 'drop') {
        emit({ ev: 'dropping', session: sid, held: session.held });
        session.destroy();
      }
    }
    // silent: never answered
  });
};

const server = tlsOpts ? smpp.createServer(tlsOpts, onSession) : smpp.createServer(onSession);
server.on('error', (e) => emit({ ev: 'server_error', error: String(e) }));
server.listen(port, '127.0.0.1', () => emit({ ev: 'listening', port: server.address().port }));

function receiverSession() {
  for (const s of sessions) if (s.bound === 'transceiver' || s.bound === 'receiver') return s;
  return null;
}

function hex(s) {
  return s ? Buffer.from(s, 'hex') : Buffer.alloc(0);
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let c;
  try {
    c = JSON.parse(line);
  } catch (e) {
    emit({ ev: 'bad_command', error: String(e) });
    return;
  }
  switch (c.cmd) {
    case 'mode':
      mode = { submit: c.submit, n: c.n || 0, status: c.status || 0, after: c.after || 0 };
      emit({ ev: 'mode', mode });
      break;
    case 'quiet':
      quiet = !!c.on;
      emit({ ev: 'quiet', on: quiet });
      break;
    case 'count':
      emit({ ev: 'count', submits });
      break;
    case 'deliver':
    case 'receipt': {
      const s = receiverSession();
      if (!s) {
        emit({ ev: 'no_receiver' });
        break;
      }
      const opts = {
        source_addr: c.source || '', source_addr_ton: c.source_ton === undefined ? 1 : c.source_ton, source_addr_npi: 1,
        destination_addr: c.dest || '', dest_addr_ton: c.dest_ton === undefined ? 0 : c.dest_ton, dest_addr_npi: 1,
        esm_class: c.esm_class || 0, data_coding: c.data_coding || 0, registered_delivery: c.registered_delivery || 0,
      };
      if (c.user_message_reference !== undefined) opts.user_message_reference = c.user_message_reference;
      if (c.cmd === 'receipt') {
        const text = c.text !== undefined ? c.text : 'id:' + c.message_id + ' sub:001 dlvrd:' + (c.stat === 'DELIVRD' ? '001' : '000') +
          ' submit date:2501021504 done date:2501021505 stat:' + c.stat + ' err:' + (c.err || '000') + ' text:Hello';
        opts.esm_class = 0x04;
        opts.short_message = Buffer.from(text, 'latin1');
        if (c.tlvs) {
          opts.receipted_message_id = c.message_id;
          opts.message_state = c.state || 2;
        }
      } else if (c.payload_hex) {
        opts.short_message = Buffer.alloc(0);
        opts.message_payload = hex(c.payload_hex);
      } else {
        opts.short_message = hex(c.sm_hex);
      }
      const pdu = new smpp.PDU('deliver_sm', opts);
      s.send(pdu);
      emit({ ev: 'delivered', session: s.sid, seq: pdu.sequence_number, id: c.id || null });
      break;
    }
    case 'enquire_link':
      for (const s of sessions) s.enquire_link();
      break;
    case 'unbind':
      for (const s of sessions) s.unbind();
      break;
    case 'drop':
      for (const s of sessions) s.destroy();
      emit({ ev: 'dropped' });
      break;
    default:
      emit({ ev: 'bad_command', cmd: c.cmd });
  }
});
rl.on('close', () => process.exit(0));
