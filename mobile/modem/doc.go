// Package modem drives a GSM/3G/LTE modem (a USB stick or a phone on a
// serial port) with AT commands in PDU mode: it receives texts and status
// reports, sends texts, and reports registration and signal. It knows the
// device and nothing about routes, letters or the journal.
//
// The AT layer (command/response framing, the "> " prompt, unsolicited
// result codes) is github.com/warthog618/modem/at; PDUs are coded by
// github.com/warthog618/sms. The port is opened by this package, raw and
// non-blocking, so that closing it ends a read from a modem that went
// silent. warthog618/modem's gsm package is not used: it asks the modem to
// pass texts straight through (+CMT) and acknowledges them at once, so a
// crash loses them.
//
// # Nothing is lost
//
// The modem is told to store every text and say where (+CNMI=2,1: +CMTI),
// and the storage is listed at every sweep. A stored message is handed to
// Config.Handler and stays on the modem until the handler calls
// Message.Ack, which deletes it (AT+CMGD) after reading the slot back to
// check it still holds that message. After a crash between storing and
// Ack the message is read again: the ingress recognises it by Fingerprint
// (or From, SCTS and Concat). Parts of a concatenated text are handed over
// one by one with their place; join them with smstext.Reassembler and Ack
// each part once the whole is stored.
//
// # Faults
//
// The device is reopened with backoff when the port disappears (an
// unplugged stick: keep Config.Port on the /dev/serial/by-id link) or a
// command gets no answer in CommandTimeout. Send returns a temporary
// SendError while the modem is closed or not registered (nothing sent), an
// uncertain one when the PDU was given to the modem and no answer came,
// and classifies +CMS ERROR codes as temporary or permanent.
package modem
