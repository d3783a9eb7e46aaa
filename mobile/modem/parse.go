package modem

import (
	"strconv"
	"strings"
)

// parseCSCA reads `+CSCA: "+48790998250",145`.
func parseCSCA(info []string) string {
	for _, l := range info {
		if !strings.HasPrefix(l, "+CSCA:") {
			continue
		}
		f := strings.SplitN(strings.TrimSpace(l[6:]), ",", 2)
		n := strings.Trim(strings.TrimSpace(f[0]), `"`)
		if validNumber(n) {
			return n
		}
	}
	return ""
}

// parseReg reads the stat of `+CREG: n,stat[,lac,ci[,act]]` (or +CEREG),
// -1 when absent. The unsolicited form `+CREG: stat[,...]` has no n; in
// answer to the read command the first field is always n.
func parseReg(info []string, prefix string) int {
	for _, l := range info {
		if !strings.HasPrefix(l, prefix) {
			continue
		}
		f := strings.Split(strings.TrimSpace(l[len(prefix):]), ",")
		if len(f) < 2 {
			return -1
		}
		v, err := strconv.Atoi(strings.TrimSpace(f[1]))
		if err != nil || v < 0 || v > 10 {
			return -1
		}
		return v
	}
	return -1
}

// parseCSQ reads the rssi of `+CSQ: rssi,ber`, 99 when unknown.
func parseCSQ(info []string) int {
	for _, l := range info {
		if !strings.HasPrefix(l, "+CSQ:") {
			continue
		}
		f := strings.Split(strings.TrimSpace(l[5:]), ",")
		v, err := strconv.Atoi(strings.TrimSpace(f[0]))
		if err != nil || v < 0 || (v > 31 && v != 99) {
			return 99
		}
		return v
	}
	return 99
}

// parseCMTI reads ` "SM",3` of +CMTI and +CDSI.
func parseCMTI(s string) (mem string, index int, ok bool) {
	f := strings.Split(strings.TrimSpace(s), ",")
	if len(f) != 2 {
		return "", 0, false
	}
	mem = strings.Trim(strings.TrimSpace(f[0]), `"`)
	index, err := strconv.Atoi(strings.TrimSpace(f[1]))
	if err != nil || index < 0 || mem == "" {
		return "", 0, false
	}
	return mem, index, true
}

// parseCMGS reads the message reference of `+CMGS: mr[,scts]`.
func parseCMGS(info []string) (int, bool) {
	for _, l := range info {
		if !strings.HasPrefix(l, "+CMGS:") {
			continue
		}
		f := strings.Split(strings.TrimSpace(l[6:]), ",")
		v, err := strconv.Atoi(strings.TrimSpace(f[0]))
		if err != nil || v < 0 || v > 255 {
			return 0, false
		}
		return v, true
	}
	return 0, false
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validNumber accepts "+digits" or digits, at most 20 of them (TS 23.040
// addresses hold 20 semi-octets).
func validNumber(s string) bool {
	s = strings.TrimPrefix(s, "+")
	return len(s) <= 20 && digits(s)
}
