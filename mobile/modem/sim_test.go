package modem

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// sim is a modem on a real pseudo-terminal that answers the AT commands of
// a Huawei E3372-like stick (TS 27.005 PDU mode). The Device opens the tty
// through a symlink, as it would /dev/serial/by-id/..., so the test can
// unplug the modem (close the master, remove the link) and plug a new one in.
type sim struct {
	t    *testing.T
	link string

	mu        sync.Mutex
	master    *os.File
	slave     *os.File
	echo      bool
	pinOK     bool
	pin       string
	store     map[int]simMsg
	sent      []string // PDUs given to AT+CMGS
	mr        int
	creg      int
	csq       int
	csca      string
	silent    bool     // swallow everything: a hung modem
	cmsNext   []int    // answers for the next AT+CMGS
	stallCMGS bool     // take the PDU and never answer
	urcMid    []string // unsolicited lines to slip into the next multi-line answer
	log       []string // commands seen
	plugged   chan struct{}
}

type simMsg struct {
	stat int
	pdu  string // PDU-mode hex: SMSC address, TPDU
}

func newSim(t *testing.T) *sim {
	s := &sim{
		t: t, link: filepath.Join(t.TempDir(), "usb-HUAWEI_Mobile_E3372-if00-port0"),
		echo: true, pinOK: true, store: map[int]simMsg{}, creg: 1, csq: 17, csca: "+48790998250",
	}
	s.plug()
	t.Cleanup(s.unplug)
	return s
}

// plug makes a new pty and points the link at it.
func (s *sim) plug() {
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
	os.Remove(s.link)
	if err := os.Symlink(sl.Name(), s.link); err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.master, s.slave, s.echo = m, sl, true
	s.plugged = make(chan struct{})
	s.mu.Unlock()
	go s.serve(m)
}

// unplug closes the master (the device sees EIO) and removes the link.
func (s *sim) unplug() {
	s.mu.Lock()
	m, sl := s.master, s.slave
	s.master, s.slave = nil, nil
	s.mu.Unlock()
	os.Remove(s.link)
	if m != nil {
		m.Close()
		sl.Close()
	}
}

func (s *sim) write(m *os.File, str string) {
	if _, err := m.Write([]byte(str)); err != nil && s.t != nil {
		// The device may be gone; that is the test's business.
		_ = err
	}
}

func (s *sim) serve(m *os.File) {
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
			silent := s.silent
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

func (s *sim) ok(m *os.File, lines ...string) {
	var b strings.Builder
	s.mu.Lock()
	urc := s.urcMid
	s.urcMid = nil
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
func (s *sim) command(m *os.File, cmd string) int {
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
		ready := s.pinOK
		s.mu.Unlock()
		if ready {
			s.ok(m, "+CPIN: READY")
		} else {
			s.ok(m, "+CPIN: SIM PIN")
		}
	case strings.HasPrefix(up, "AT+CPIN="):
		s.mu.Lock()
		good := strings.Trim(cmd[8:], `"`) == s.pin
		if good {
			s.pinOK = true
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
		csca := s.csca
		s.mu.Unlock()
		s.ok(m, fmt.Sprintf(`+CSCA: "%s",145`, csca))
	case up == "AT+CREG?":
		s.mu.Lock()
		r := s.creg
		s.mu.Unlock()
		s.ok(m, fmt.Sprintf("+CREG: 0,%d", r))
	case up == "AT+CEREG?":
		s.write(m, "\r\nERROR\r\n") // a 3G E3372 firmware without +CEREG
	case up == "AT+CSQ":
		s.mu.Lock()
		q := s.csq
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
			lines = append(lines, fmt.Sprintf("+CMGL: %d,%d,,%d", i, e.stat, tpduLen(e.pdu)), e.pdu)
			if e.stat == 0 {
				e.stat = 1
				s.store[i] = e
			}
		}
		s.mu.Unlock()
		s.ok(m, lines...)
	case strings.HasPrefix(up, "AT+CMGR="):
		i, _ := strconv.Atoi(cmd[8:])
		s.mu.Lock()
		e, ok := s.store[i]
		if ok && e.stat == 0 {
			s.store[i] = simMsg{stat: 1, pdu: e.pdu}
		}
		s.mu.Unlock()
		if !ok {
			// An empty slot: the E3372 answers OK with nothing; others 321.
			s.write(m, "\r\n+CMS ERROR: 321\r\n")
			return -1
		}
		s.ok(m, fmt.Sprintf("+CMGR: %d,,%d", e.stat, tpduLen(e.pdu)), e.pdu)
	case strings.HasPrefix(up, "AT+CMGD="):
		i, _ := strconv.Atoi(cmd[8:])
		s.mu.Lock()
		delete(s.store, i)
		s.mu.Unlock()
		s.ok(m)
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

func (s *sim) cmgs(m *os.File, pdu string, n int) {
	s.mu.Lock()
	if s.stallCMGS {
		s.sent = append(s.sent, pdu)
		s.mu.Unlock()
		return
	}
	var code int
	if len(s.cmsNext) > 0 {
		code, s.cmsNext = s.cmsNext[0], s.cmsNext[1:]
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

// receive stores a PDU as a network-delivered message and announces it.
func (s *sim) receive(pdu string, announce bool) int {
	s.mu.Lock()
	i := 0
	for {
		if _, used := s.store[i]; !used {
			break
		}
		i++
	}
	s.store[i] = simMsg{stat: 0, pdu: pdu}
	m := s.master
	s.mu.Unlock()
	if announce && m != nil {
		s.write(m, fmt.Sprintf("\r\n+CMTI: \"SM\",%d\r\n", i))
	}
	return i
}

func (s *sim) stored() map[int]simMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int]simMsg, len(s.store))
	for k, v := range s.store {
		out[k] = v
	}
	return out
}

func (s *sim) sentPDUs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.sent...)
}

func (s *sim) set(f func(*sim)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *sim) saw(cmd string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.log {
		if c == cmd {
			return true
		}
	}
	return false
}

var _ = bytes.Equal
