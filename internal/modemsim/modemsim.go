// Package modemsim is a simulated GSM modem for tests: a real pseudo-terminal
// that answers the AT commands of a Huawei E3372-like stick in PDU mode (TS
// 27.005: +CMGF, +CPMS, +CNMI, +CMTI, +CMGL, +CMGR, +CMGD, +CMGS with the "> "
// prompt, +CMS ERROR), reached through a symlink as a device would be through
// /dev/serial/by-id/..., so a test can unplug it and plug it back in. The
// mobile/modem tests and the end-to-end tests of the binary share it; it lives
// in the test process, so it outlives a smsrouter that is killed.
package modemsim

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/pdumode"
	"github.com/warthog618/sms/encoding/tpdu"
	"golang.org/x/sys/unix"
)

// Sim is a modem on a real pseudo-terminal that answers the AT commands of
// a Huawei E3372-like stick (TS 27.005 PDU mode). The device under test opens
// the tty through the symlink Link, as it would /dev/serial/by-id/..., so the
// test can unplug the modem (close the master, remove the link) and plug a
// new one in. Change the exported fields with Set.
type Sim struct {
	t    testing.TB
	Link string // the device path to open

	mu        sync.Mutex
	master    *os.File
	slave     *os.File
	echo      bool
	PINOK     bool
	PIN       string
	store     map[int]Msg
	sent      []string // PDUs given to AT+CMGS
	mr        int
	CREG      int
	CSQ       int
	CSCA      string
	Silent    bool     // swallow everything: a hung modem
	CMSNext   []int    // answers for the next AT+CMGS
	StallCMGS bool     // take the PDU and never answer
	StallCMGD bool     // take AT+CMGD and never answer (nor delete)
	URCMid    []string // unsolicited lines to slip into the next multi-line answer
	log       []string // commands seen
	plugged   chan struct{}
}

// Msg is one message in the modem's storage.
type Msg struct {
	Stat int    // 0 received unread, 1 received read
	PDU  string // PDU-mode hex: SMSC address, TPDU
}

// New plugs in a registered modem (home network, signal 17) with an unlocked
// SIM that knows its SMSC; t.Cleanup unplugs it.
func New(t testing.TB) *Sim {
	s := &Sim{
		t: t, Link: filepath.Join(t.TempDir(), "usb-HUAWEI_Mobile_E3372-if00-port0"),
		echo: true, PINOK: true, store: map[int]Msg{}, CREG: 1, CSQ: 17, CSCA: "+48790998250",
	}
	s.Plug()
	t.Cleanup(s.Unplug)
	return s
}

// Plug makes a new pty and points the link at it.
func (s *Sim) Plug() {
	pm, sl, err := pty.Open()
	if err != nil {
		s.t.Fatal(err)
	}
	// creack/pty leaves the master blocking (it calls Fd), and a blocked
	// read keeps Close from closing it: the device would never see the
	// stick go. A non-blocking duplicate is polled by the runtime instead.
	fd, err := unix.Dup(int(pm.Fd()))
	if err != nil {
		s.t.Fatal(err)
	}
	pm.Close()
	if err := unix.SetNonblock(fd, true); err != nil {
		s.t.Fatal(err)
	}
	m := os.NewFile(uintptr(fd), "ptmx")
	os.Remove(s.Link)
	if err := os.Symlink(sl.Name(), s.Link); err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.master, s.slave, s.echo = m, sl, true
	s.plugged = make(chan struct{})
	s.mu.Unlock()
	go s.serve(m)
}

// Unplug closes the master (the device sees EIO) and removes the link.
func (s *Sim) Unplug() {
	s.mu.Lock()
	m, sl := s.master, s.slave
	s.master, s.slave = nil, nil
	s.mu.Unlock()
	os.Remove(s.Link)
	if m != nil {
		m.Close()
		sl.Close()
	}
}

func (s *Sim) write(m *os.File, str string) {
	if _, err := m.Write([]byte(str)); err != nil && s.t != nil {
		// The device may be gone; that is the test's business.
		_ = err
	}
}

func (s *Sim) serve(m *os.File) {
	buf := make([]byte, 4096)
	var line []byte
	var pduFor int = -1 // AT+CMGS length while waiting for the PDU
	for {
		n, err := m.Read(buf)
		if err != nil {
			return
		}
		for _, c := range buf[:n] {
			s.mu.Lock()
			silent := s.Silent
			s.mu.Unlock()
			if silent {
				continue
			}
			if pduFor >= 0 {
				switch c {
				case 0x1a:
					s.cmgs(m, string(line), pduFor)
					line, pduFor = nil, -1
				case 0x1b:
					line, pduFor = nil, -1
				default:
					line = append(line, c)
				}
				continue
			}
			switch c {
			case '\r':
				cmd := strings.TrimSpace(string(line))
				line = nil
				if cmd == "" {
					continue
				}
				s.mu.Lock()
				echo := s.echo
				s.mu.Unlock()
				if echo {
					s.write(m, cmd+"\r")
				}
				pduFor = s.command(m, cmd)
			case '\n':
			case 0x1b:
				line = nil
			default:
				line = append(line, c)
			}
		}
	}
}

func (s *Sim) ok(m *os.File, lines ...string) {
	var b strings.Builder
	s.mu.Lock()
	urc := s.URCMid
	s.URCMid = nil
	s.mu.Unlock()
	for i, l := range lines {
		b.WriteString("\r\n" + l + "\r\n")
		// Unsolicited results interleave with answers between entries.
		if i == 1 && len(urc) > 0 {
			for _, u := range urc {
				b.WriteString("\r\n" + u + "\r\n")
			}
			urc = nil
		}
	}
	for _, u := range urc {
		b.WriteString("\r\n" + u + "\r\n")
	}
	b.WriteString("\r\nOK\r\n")
	s.write(m, b.String())
}

// command answers one command line; it returns the AT+CMGS length when the
// PDU is to follow, else -1.
func (s *Sim) command(m *os.File, cmd string) int {
	s.mu.Lock()
	s.log = append(s.log, cmd)
	s.mu.Unlock()
	up := strings.ToUpper(cmd)
	switch {
	case up == "AT", up == "ATZ", up == "AT+CMEE=1", up == "AT+CMGF=0", strings.HasPrefix(up, "AT+CNMI=2,1,0,2,0"):
		s.ok(m)
	case up == "ATE0":
		s.mu.Lock()
		s.echo = false
		s.mu.Unlock()
		s.ok(m)
	case up == "AT+CPIN?":
		s.mu.Lock()
		ready := s.PINOK
		s.mu.Unlock()
		if ready {
			s.ok(m, "+CPIN: READY")
		} else {
			s.ok(m, "+CPIN: SIM PIN")
		}
	case strings.HasPrefix(up, "AT+CPIN="):
		s.mu.Lock()
		good := strings.Trim(cmd[8:], `"`) == s.PIN
		if good {
			s.PINOK = true
		}
		s.mu.Unlock()
		if good {
			s.ok(m)
		} else {
			s.write(m, "\r\n+CME ERROR: 16\r\n")
		}
	case strings.HasPrefix(up, "AT+CPMS="):
		s.mu.Lock()
		n := len(s.store)
		s.mu.Unlock()
		s.ok(m, fmt.Sprintf("+CPMS: %d,50,%d,50,%d,50", n, n, n))
	case up == "AT+CSCA?":
		s.mu.Lock()
		csca := s.CSCA
		s.mu.Unlock()
		s.ok(m, fmt.Sprintf(`+CSCA: "%s",145`, csca))
	case up == "AT+CREG?":
		s.mu.Lock()
		r := s.CREG
		s.mu.Unlock()
		s.ok(m, fmt.Sprintf("+CREG: 0,%d", r))
	case up == "AT+CEREG?":
		s.write(m, "\r\nERROR\r\n") // a 3G E3372 firmware without +CEREG
	case up == "AT+CSQ":
		s.mu.Lock()
		q := s.CSQ
		s.mu.Unlock()
		s.ok(m, fmt.Sprintf("+CSQ: %d,99", q))
	case up == "AT+CMGL=4":
		s.mu.Lock()
		idx := make([]int, 0, len(s.store))
		for i := range s.store {
			idx = append(idx, i)
		}
		sort.Ints(idx)
		var lines []string
		for _, i := range idx {
			e := s.store[i]
			lines = append(lines, fmt.Sprintf("+CMGL: %d,%d,,%d", i, e.Stat, tpduLen(e.PDU)), e.PDU)
			if e.Stat == 0 {
				e.Stat = 1
				s.store[i] = e
			}
		}
		s.mu.Unlock()
		s.ok(m, lines...)
	case strings.HasPrefix(up, "AT+CMGR="):
		i, _ := strconv.Atoi(cmd[8:])
		s.mu.Lock()
		e, ok := s.store[i]
		if ok && e.Stat == 0 {
			s.store[i] = Msg{Stat: 1, PDU: e.PDU}
		}
		s.mu.Unlock()
		if !ok {
			// An empty slot: the E3372 answers OK with nothing; others 321.
			s.write(m, "\r\n+CMS ERROR: 321\r\n")
			return -1
		}
		s.ok(m, fmt.Sprintf("+CMGR: %d,,%d", e.Stat, tpduLen(e.PDU)), e.PDU)
	case strings.HasPrefix(up, "AT+CMGD="):
		i, _ := strconv.Atoi(cmd[8:])
		s.mu.Lock()
		stall := s.StallCMGD
		if !stall {
			delete(s.store, i)
		}
		s.mu.Unlock()
		if !stall {
			s.ok(m)
		}
	case strings.HasPrefix(up, "AT+CMGS="):
		n, err := strconv.Atoi(cmd[8:])
		if err != nil {
			s.write(m, "\r\n+CMS ERROR: 304\r\n")
			return -1
		}
		s.write(m, "\r\n> ")
		return n
	default:
		s.write(m, "\r\nERROR\r\n")
	}
	return -1
}

func (s *Sim) cmgs(m *os.File, pdu string, n int) {
	s.mu.Lock()
	if s.StallCMGS {
		s.sent = append(s.sent, pdu)
		s.mu.Unlock()
		return
	}
	var code int
	if len(s.CMSNext) > 0 {
		code, s.CMSNext = s.CMSNext[0], s.CMSNext[1:]
	}
	if code == 0 {
		if tpduLen(pdu) != n {
			code = 304
		} else {
			s.sent = append(s.sent, pdu)
			s.mr = (s.mr + 1) % 256
		}
	}
	mr := s.mr
	s.mu.Unlock()
	if code != 0 {
		s.write(m, fmt.Sprintf("\r\n+CMS ERROR: %d\r\n", code))
		return
	}
	s.ok(m, fmt.Sprintf("+CMGS: %d", mr))
}

// tpduLen is the TPDU length of a PDU-mode hex string (without the SMSC part).
func tpduLen(pdu string) int {
	b, err := hex.DecodeString(pdu)
	if err != nil || len(b) == 0 {
		return -1
	}
	return len(b) - 1 - int(b[0])
}

// Receive stores a PDU as a network-delivered message, announces it with
// +CMTI when announce is set, and returns its index.
func (s *Sim) Receive(pdu string, announce bool) int {
	s.mu.Lock()
	i := 0
	for {
		if _, used := s.store[i]; !used {
			break
		}
		i++
	}
	s.store[i] = Msg{Stat: 0, PDU: pdu}
	m := s.master
	s.mu.Unlock()
	if announce && m != nil {
		s.write(m, fmt.Sprintf("\r\n+CMTI: \"SM\",%d\r\n", i))
	}
	return i
}

// Stored returns the storage by index.
func (s *Sim) Stored() map[int]Msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int]Msg, len(s.store))
	for k, v := range s.store {
		out[k] = v
	}
	return out
}

// SentPDUs returns the PDUs given to AT+CMGS, in order.
func (s *Sim) SentPDUs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.sent...)
}

// Set changes the exported fields under the modem's lock.
func (s *Sim) Set(f func(*Sim)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// Commands returns every command line the modem got, in order.
func (s *Sim) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

// Saw reports whether the modem got the command line cmd.
func (s *Sim) Saw(cmd string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.log {
		if c == cmd {
			return true
		}
	}
	return false
}

// SCTS is the service centre time stamp DeliverPDUs and StatusReportPDU use.
var SCTS = time.Date(2025, 3, 4, 10, 11, 12, 0, time.FixedZone("", 3600))

// DeliverPDUs builds the SMS-DELIVER PDUs a network hands a modem for text
// from the sender (concatenated parts with reference ref when it is long),
// time-stamped scts (SCTS when zero), with warthog618/sms.
func DeliverPDUs(t testing.TB, from, text string, ref int, scts time.Time) []string {
	t.Helper()
	if scts.IsZero() {
		scts = SCTS
	}
	enc := sms.NewEncoder(sms.AsDeliver, sms.From(from))
	enc.ConcatRef = fixedCounter(ref)
	tps, err := enc.Encode([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tp := range tps {
		tp.SCTS = tpdu.Timestamp{Time: scts}
		b, err := tp.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		p := pdumode.PDU{TPDU: b}
		p.SMSC.SetNumber("+48790998250")
		h, err := p.MarshalHexString()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h)
	}
	return out
}

type fixedCounter int

func (c fixedCounter) Count() int { return int(c) }

// StatusReportPDU builds an SMS-STATUS-REPORT for the message reference mr
// sent to the number to, with status st (0 delivered, 0x41... failed).
func StatusReportPDU(t testing.TB, mr byte, to string, st byte) string {
	t.Helper()
	tp := tpdu.TPDU{}
	if err := tp.SetSmsType(tpdu.SmsStatusReport); err != nil {
		t.Fatal(err)
	}
	tp.MR = mr
	tp.RA = tpdu.NewAddress(tpdu.FromNumber(to))
	tp.SCTS = tpdu.Timestamp{Time: SCTS}
	tp.DT = tpdu.Timestamp{Time: SCTS.Add(time.Minute)}
	tp.ST = st
	b, err := tp.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	p := pdumode.PDU{TPDU: b}
	h, err := p.MarshalHexString()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// DecodeSent reads a PDU the modem got from AT+CMGS.
func DecodeSent(t testing.TB, h string) *tpdu.TPDU {
	t.Helper()
	p, err := pdumode.UnmarshalHexString(h)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := sms.Unmarshal(p.TPDU, sms.AsMO)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// SentText decodes the text of a sent PDU and its concatenation place
// (seq 0 for a whole message).
func SentText(t testing.TB, h string) (text string, ref, seq, total int) {
	t.Helper()
	tp := DecodeSent(t, h)
	b, err := tpdu.DecodeUserData(tp.UD, tp.UDH, mustAlpha(t, tp), tpdu.WithAllCharsets)
	if err != nil {
		t.Fatal(err)
	}
	if segs, s, r, ok := tp.UDH.ConcatInfo(); ok {
		total, seq, ref = segs, s, r
	}
	return string(b), ref, seq, total
}

func mustAlpha(t testing.TB, tp *tpdu.TPDU) tpdu.Alphabet {
	a, err := tp.DCS.Alphabet()
	if err != nil {
		t.Fatal(err)
	}
	return a
}
