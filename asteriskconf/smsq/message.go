// Package smsq reads and writes the queue files of Asterisk's app_sms
// (sms/morx, sms/mttx, sms/mtrx, sms/motx under the Asterisk spool directory)
// and knows how much text one SMS can carry.
//
// Reading follows app_sms's own reader (sms_readfile in apps/app_sms.c) closely
// enough to accept every file app_sms or smsq writes, including the quirks of
// Asterisk 22 (CESU-8 surrogates and raw 0xBF bytes in ud= lines, the ;ud=
// comment line), but it is stricter than app_sms where app_sms would silently
// send garbage: a damaged file is an error, so the router can quarantine it
// with a reason instead of delivering a mangled message.
//
// Writing always uses the hex forms of the text (ud# or ud##), because the ud=
// form is decoded wrongly by app_sms in Asterisk 20.15+/21.10+/22.5+.
//
// The package does no I/O: callers hand it bytes and place the bytes it
// returns into the spool themselves (atomically, by rename).
package smsq

import (
	"time"
)

// Message is one app_sms queue file.
type Message struct {
	OA, DA string    // as written in the file (the router validates them)
	SCTS   time.Time // zero when absent
	PID    int       // 0 when absent
	DCS    int       // -1 when absent (app_sms then picks the coding itself)
	MR     int       // -1 when absent
	VP     int       // validity period in MINUTES, 0 when absent
	SRR    bool
	RP     bool
	UDH    []byte // information elements WITHOUT the UDHL octet; nil when no udh line
	HasUDH bool   // a udh# line was present (even an empty one sets UDHI in app_sms)
	Text   string // always valid UTF-8

	// Warnings lists what app_sms itself would only log and ignore (unknown
	// keys, the # form on a key that has no hex form). Parse fills it; Marshal
	// ignores it.
	Warnings []string
}

// Binary reports whether the data coding scheme says the user data is 8-bit
// data (for example dcs=4, 0xF4, 0xF5) rather than text.
//
// It follows GSM 03.38 / 3GPP TS 23.038. app_sms's own is8bit() macro differs
// for a few rarely used groups (it looks only at bit 2 whenever either of the
// two top bits is set, so it calls 0xC4 8-bit and 0x48 7-bit); the standard is
// what the sending phone meant.
func (m *Message) Binary() bool {
	return m.DCS >= 0 && dcsCoding(m.DCS) == coding8bit
}

type coding int

const (
	coding7bit coding = iota
	coding8bit
	codingUCS2
)

// dcsCoding returns the alphabet a TP-DCS value selects (3GPP TS 23.038 §4).
// Reserved values are read as the default alphabet, as the standard asks.
func dcsCoding(dcs int) coding {
	switch {
	case dcs&0xC0 == 0x00, dcs&0xC0 == 0x40: // general data coding, with or without auto-deletion
		switch dcs & 0x0C {
		case 0x04:
			return coding8bit
		case 0x08:
			return codingUCS2
		}
		return coding7bit
	case dcs&0xF0 == 0xE0: // message waiting, store, UCS-2
		return codingUCS2
	case dcs&0xF0 == 0xF0: // data coding / message class
		if dcs&0x04 != 0 {
			return coding8bit
		}
		return coding7bit
	}
	return coding7bit // 0x80..0xBF reserved, 0xC0..0xDF message waiting (7-bit)
}

// Concat returns the concatenation information element of the user data
// header: IEI 00 (8-bit reference) or IEI 08 (16-bit reference). ok is false
// when there is no such element, when the header is malformed (an element
// runs past the end), or when the element is invalid (total 0, seq 0 or seq >
// total), which 3GPP TS 23.040 §9.2.3.24.1 says a receiver must ignore.
func (m *Message) Concat() (ref uint16, total, seq uint8, ok bool) {
	udh := m.UDH
	for len(udh) >= 2 {
		iei, n := udh[0], int(udh[1])
		if len(udh) < 2+n {
			return 0, 0, 0, false
		}
		data := udh[2 : 2+n]
		udh = udh[2+n:]
		switch {
		case iei == 0x00 && n == 3:
			ref, total, seq = uint16(data[0]), data[1], data[2]
		case iei == 0x08 && n == 4:
			ref, total, seq = uint16(data[0])<<8|uint16(data[1]), data[2], data[3]
		default:
			continue
		}
		if total == 0 || seq == 0 || seq > total {
			return 0, 0, 0, false
		}
		return ref, total, seq, true
	}
	return 0, 0, 0, false
}
