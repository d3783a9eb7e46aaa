package smpp

import (
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"time"
)

// MessageState is the SMPP 3.4 message_state (5.2.28), as carried by the
// message_state TLV or named by a receipt's stat: field.
type MessageState byte

const (
	StateUnknownValue  MessageState = 0
	StateEnroute       MessageState = 1
	StateDelivered     MessageState = 2
	StateExpired       MessageState = 3
	StateDeleted       MessageState = 4
	StateUndeliverable MessageState = 5
	StateAccepted      MessageState = 6
	StateUnknown       MessageState = 7
	StateRejected      MessageState = 8
)

var stateNames = map[MessageState]string{
	StateEnroute: "ENROUTE", StateDelivered: "DELIVRD", StateExpired: "EXPIRED",
	StateDeleted: "DELETED", StateUndeliverable: "UNDELIV", StateAccepted: "ACCEPTD",
	StateUnknown: "UNKNOWN", StateRejected: "REJECTD",
}

func (s MessageState) String() string {
	if n, ok := stateNames[s]; ok {
		return n
	}
	return fmt.Sprintf("state(%d)", byte(s))
}

// Final reports whether no further receipt will follow: the message reached
// the handset or never will.
func (s MessageState) Final() bool {
	switch s {
	case StateDelivered, StateExpired, StateDeleted, StateUndeliverable, StateRejected:
		return true
	}
	return false
}

// stateFromStat maps a receipt's stat: word. SMSCs write the 7-letter forms
// of Appendix B, some the long ones.
func stateFromStat(stat string) MessageState {
	switch strings.ToUpper(stat) {
	case "DELIVRD", "DELIVERED":
		return StateDelivered
	case "EXPIRED":
		return StateExpired
	case "DELETED":
		return StateDeleted
	case "UNDELIV", "UNDELIVERABLE", "FAILED":
		return StateUndeliverable
	case "ACCEPTD", "ACCEPTED":
		return StateAccepted
	case "UNKNOWN":
		return StateUnknown
	case "REJECTD", "REJECTED":
		return StateRejected
	case "ENROUTE":
		return StateEnroute
	}
	return StateUnknownValue
}

// Receipt is a delivery receipt (SMPP 3.4 Appendix B and the 3.4 TLVs).
type Receipt struct {
	// MessageID is the id of the submitted message: the receipted_message_id
	// TLV when present, else the text's id: field. Compare it with the
	// submit_sm_resp id through SameMessageID.
	MessageID string
	Stat      string       // the stat: word as written (DELIVRD, UNDELIV...)
	State     MessageState // the message_state TLV, else from Stat
	Err       string       // the err: field (network or SMSC specific)
	Sub       string
	Dlvrd     string
	// SubmitDate and DoneDate as the SMSC wrote them (YYMMDDhhmm[ss]), read
	// as UTC because the receipt does not say its zone; zero when absent or
	// unreadable.
	SubmitDate, DoneDate time.Time
	Text                 string // the first characters of the message, if given
	NetworkError         []byte // network_error_code TLV: type, then a 2-octet code
}

// Delivered reports a receipt saying the handset has the message.
func (r *Receipt) Delivered() bool { return r.State == StateDelivered }

// ErrNotReceipt is returned by ParseReceipt for text that does not hold a
// receipt's id: and stat: fields.
var ErrNotReceipt = errors.New("not a delivery receipt text")

var receiptKeys = []string{"id", "sub", "dlvrd", "submit date", "done date", "stat", "err", "text"}

// ParseReceipt reads the receipt text of SMPP 3.4 Appendix B:
//
//	id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E text:...
//
// Keys are matched without regard to case, in any order, each at the start
// or after a space; fields may be missing except id and stat. SMSCs differ
// in the details (submit_date, 12-digit dates, "Text:"), and all of those
// are accepted.
func ParseReceipt(s string) (Receipt, error) {
	// ASCII-only lowering keeps every index valid in s: strings.ToLower
	// changes the length of some non-ASCII text.
	lower := []byte(s)
	for i, c := range lower {
		if 'A' <= c && c <= 'Z' {
			lower[i] = c + 'a' - 'A'
		}
	}
	type found struct {
		key        string
		start, val int // key start, value start
	}
	var at []found
	for _, k := range receiptKeys {
		variants := []string{k + ":"}
		if strings.Contains(k, " ") {
			variants = append(variants, strings.ReplaceAll(k, " ", "_")+":")
		}
		for _, v := range variants {
			if i := keyIndex(string(lower), v); i >= 0 {
				at = append(at, found{k, i, i + len(v)})
				break
			}
		}
	}
	sort.Slice(at, func(i, j int) bool { return at[i].start < at[j].start })
	fields := make(map[string]string, len(at))
	for i, f := range at {
		end := len(s)
		if i+1 < len(at) {
			end = max(at[i+1].start, f.val)
		}
		if f.key == "text" {
			fields[f.key] = strings.TrimLeft(s[f.val:end], " ")
			continue
		}
		fields[f.key] = strings.TrimSpace(s[f.val:end])
	}
	id, okID := fields["id"]
	stat, okStat := fields["stat"]
	if !okID || !okStat || id == "" || stat == "" {
		return Receipt{}, ErrNotReceipt
	}
	return Receipt{
		MessageID:  id,
		Stat:       stat,
		State:      stateFromStat(stat),
		Err:        fields["err"],
		Sub:        fields["sub"],
		Dlvrd:      fields["dlvrd"],
		SubmitDate: receiptDate(fields["submit date"]),
		DoneDate:   receiptDate(fields["done date"]),
		Text:       fields["text"],
	}, nil
}

// keyIndex finds key at the start of s or after a space.
func keyIndex(s, key string) int {
	for from := 0; from < len(s); {
		i := strings.Index(s[from:], key)
		if i < 0 {
			return -1
		}
		i += from
		if i == 0 || s[i-1] == ' ' {
			return i
		}
		from = i + 1
	}
	return -1
}

func receiptDate(v string) time.Time {
	layouts := map[int]string{10: "0601021504", 12: "060102150405"}
	if l, ok := layouts[len(v)]; ok {
		if t, err := time.ParseInLocation(l, v, time.UTC); err == nil {
			return t
		}
	}
	return time.Time{}
}

// SameMessageID reports whether two message ids name the same message. The
// SMPP 3.4 receipt format leaves the id's form open, and SMSCs are known to
// answer submit_sm in hexadecimal and write receipts in decimal (or pad with
// zeros, or change the case), so ids are equal when they are equal as text
// without regard to case, or when one read as hexadecimal equals the other
// read as decimal, leading zeros aside.
func SameMessageID(a, b string) bool {
	if strings.EqualFold(a, b) {
		return true
	}
	if a == "" || b == "" {
		return false
	}
	num := func(s string, base int) (*big.Int, bool) {
		if len(s) > 64 {
			return nil, false
		}
		return new(big.Int).SetString(s, base)
	}
	ah, okAH := num(a, 16)
	bh, okBH := num(b, 16)
	if okAH && okBH && ah.Cmp(bh) == 0 {
		return true
	}
	ad, okAD := num(a, 10)
	bd, okBD := num(b, 10)
	if okAD && okBD && ad.Cmp(bd) == 0 {
		return true
	}
	return (okAH && okBD && ah.Cmp(bd) == 0) || (okAD && okBH && ad.Cmp(bh) == 0)
}
