package modem

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/pdumode"
	"github.com/warthog618/sms/encoding/tpdu"

	"smsrouter/mobile/smstext"
)

// Kind tells a received message from a status report.
type Kind int

const (
	Deliver      Kind = iota // SMS-DELIVER: a text from a phone
	StatusReport             // SMS-STATUS-REPORT: the fate of a text we sent
)

// Message is one SMS the modem received: an SMS-DELIVER (or one part of a
// concatenated one) or a status report. It stays in the modem's storage
// until Ack.
type Message struct {
	Kind Kind
	// Storage and Index say where the modem keeps it; Index is -1 for a
	// message the modem passed straight through (+CMT, +CDS), which is not
	// stored and needs no Ack.
	Storage string
	Index   int

	From    string    // the sender, "+48600111222" when international
	SCTS    time.Time // the service centre's time stamp, in the zone it gives
	Text    string
	Binary  bool  // 8-bit data; Text holds the octets as Latin-1
	DCS     byte  // TP-DCS
	TextErr error // what could not be decoded in Text
	Concat  smstext.Concat

	Report *Report // set for a status report

	// TPDU is the message as the network sent it; Fingerprint is a hash of
	// it. The same message read again (after a crash between storing it and
	// Ack, or after a reopen) has the same fingerprint: the ingress
	// deduplicates on it (with From, SCTS and Concat for a readable key).
	TPDU        []byte
	Fingerprint string

	// Malformed says why the PDU could not be read; the message should be
	// put aside with the reason and acknowledged so it leaves the SIM.
	Malformed error

	d      *Device
	settle sync.Once
}

// Report is an SMS-STATUS-REPORT (TS 23.040 9.2.2.3).
type Report struct {
	Reference int // TP-MR of the submitted message, as +CMGS returned it
	Recipient string
	SCTS      time.Time // when the centre took the message
	Discharge time.Time // when the status was reached
	Status    byte      // TP-ST
}

// Delivered reports a message the recipient has (TP-ST 0x00-0x1F).
func (r *Report) Delivered() bool { return r.Status < 0x20 }

// Final reports that no further report will follow: delivered, or given up
// (0x40 and above). 0x20-0x3F mean the centre is still trying.
func (r *Report) Final() bool { return r.Status < 0x20 || r.Status >= 0x40 }

// listing is one entry of +CMGL or the answer of +CMGR.
type listing struct {
	index, stat, length int
	pdu                 string
}

// Message status values of +CMGL/+CMGR in PDU mode (TS 27.005 3.1).
const (
	statRecUnread = 0
	statRecRead   = 1
)

// parseListing reads the info lines of AT+CMGL (prefix "+CMGL:") or of
// AT+CMGR (prefix "+CMGR:", with index given). Each header line is followed
// by its PDU line. Lines of other kinds (unsolicited results the modem
// slipped in between entries) are skipped.
func parseListing(lines []string, prefix string, index int) ([]listing, error) {
	var out []listing
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		f := strings.Split(strings.TrimSpace(line[len(prefix):]), ",")
		var l listing
		var err error
		if prefix == "+CMGL:" {
			if len(f) < 3 {
				return out, fmt.Errorf("%q: too few fields", line)
			}
			if l.index, err = strconv.Atoi(strings.TrimSpace(f[0])); err != nil {
				return out, fmt.Errorf("%q: index: %w", line, err)
			}
			f = f[1:]
		} else {
			if len(f) < 2 {
				return out, fmt.Errorf("%q: too few fields", line)
			}
			l.index = index
		}
		if l.stat, err = strconv.Atoi(strings.TrimSpace(f[0])); err != nil {
			return out, fmt.Errorf("%q: stat: %w", line, err)
		}
		if l.length, err = strconv.Atoi(strings.TrimSpace(f[len(f)-1])); err != nil {
			return out, fmt.Errorf("%q: length: %w", line, err)
		}
		if i+1 >= len(lines) {
			return out, fmt.Errorf("%q: no PDU line", line)
		}
		i++
		l.pdu = strings.TrimSpace(lines[i])
		out = append(out, l)
	}
	return out, nil
}

// decodeMessage reads a PDU-mode hex string (SMSC address, then the TPDU)
// of a message received by the modem. length is the TPDU length the modem
// announced, or -1. It never fails: what cannot be read sets Malformed.
func decodeMessage(pduHex string, length int) *Message {
	m := &Message{Index: -1}
	raw, err := hex.DecodeString(pduHex)
	if err != nil {
		m.Malformed = fmt.Errorf("PDU is not hexadecimal: %w", err)
		m.TPDU = []byte(pduHex)
		m.Fingerprint = fingerprint(m.TPDU)
		return m
	}
	p, err := pdumode.UnmarshalBinary(raw)
	if err != nil {
		m.Malformed = fmt.Errorf("PDU: %w", err)
		m.TPDU = raw
		m.Fingerprint = fingerprint(raw)
		return m
	}
	m.TPDU = p.TPDU
	m.Fingerprint = fingerprint(p.TPDU)
	if length >= 0 && length != len(p.TPDU) {
		m.Malformed = fmt.Errorf("PDU: the modem announced %d octets, the TPDU has %d", length, len(p.TPDU))
		return m
	}
	t, err := sms.Unmarshal(p.TPDU, sms.AsMT)
	if err != nil {
		m.Malformed = fmt.Errorf("TPDU: %w", err)
		return m
	}
	switch t.SmsType() {
	case tpdu.SmsDeliver:
		m.Kind = Deliver
		m.From = t.OA.Number()
		m.SCTS = t.SCTS.Time
		m.DCS = byte(t.DCS)
		m.Text, m.Binary, m.TextErr = userText(t)
		if segs, seq, ref, ok := t.UDH.ConcatInfo(); ok {
			c := smstext.Concat{Ref: uint16(ref), Total: segs, Seq: seq}
			if c.Valid() {
				m.Concat = c
			}
		}
	case tpdu.SmsStatusReport:
		m.Kind = StatusReport
		m.From = t.RA.Number()
		m.SCTS = t.SCTS.Time
		m.Report = &Report{Reference: int(t.MR), Recipient: t.RA.Number(), SCTS: t.SCTS.Time, Discharge: t.DT.Time, Status: t.ST}
	default:
		m.Malformed = fmt.Errorf("TPDU: %v is not a received message", t.SmsType())
	}
	return m
}

// userText decodes the user data; 8-bit data becomes Latin-1 so nothing is
// lost, as in smstext.Decode.
func userText(t *tpdu.TPDU) (string, bool, error) {
	alpha, err := t.DCS.Alphabet()
	if err != nil {
		alpha = tpdu.Alpha7Bit
	}
	switch alpha {
	case tpdu.Alpha8Bit:
		s, _, _ := smstext.Decode(0x04, t.UD)
		return s, true, nil
	case tpdu.AlphaUCS2:
		s, _, derr := smstext.Decode(0x08, t.UD)
		return s, false, derr
	}
	b, derr := tpdu.DecodeUserData(t.UD, t.UDH, tpdu.Alpha7Bit, tpdu.WithAllCharsets)
	if derr != nil {
		// A septet outside every table: read what the default table can.
		s, _, _ := smstext.Decode(0x00, t.UD)
		return s, false, fmt.Errorf("decode: %w", derr)
	}
	if err != nil {
		return string(b), false, fmt.Errorf("DCS %#02x is reserved; read as GSM 7-bit", byte(t.DCS))
	}
	return string(b), false, nil
}

func fingerprint(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:12])
}

// ErrNotOpen is returned while the device is closed (unplugged, reopening).
var ErrNotOpen = errors.New("modem: device not open")

// Ack deletes the message from the modem: call it once the message is
// safely stored. The index is read back first and deleted only if it still
// holds this very message. If the device is closed at that moment the
// deletion is done when it is open again; a crash before then leaves the
// message on the SIM to be read again (deduplicate on Fingerprint).
func (m *Message) Ack() error {
	err := ErrSettled
	m.settle.Do(func() {
		err = nil
		if m.d != nil && m.Index >= 0 {
			err = m.d.ack(m)
		}
	})
	return err
}

// Release gives the message back: it stays on the modem and is handed over
// again at the next sweep. Call it when it could not be stored.
func (m *Message) Release() {
	m.settle.Do(func() {
		if m.d != nil && m.Index >= 0 {
			m.d.release(m)
		}
	})
}

// ErrSettled is returned by a second Ack.
var ErrSettled = errors.New("modem: message already acknowledged or released")

func sameTPDU(a, b []byte) bool { return bytes.Equal(a, b) }
