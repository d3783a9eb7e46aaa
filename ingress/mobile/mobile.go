// Package mobile is the ingress of the mobile links: it turns what an SMSC
// (mobile/smpp) or a GSM modem (mobile/modem) hands over into queued messages
// and recorded delivery receipts, and only then tells the network it has them.
// Like the other ingresses it never routes: a message goes into the router's
// inbox addressed to the number the mobile phone texted, and the router maps
// that number to a PBX number (router.Inbound) and delivers it.
//
// # Concatenated messages
//
// Each part is queued as it comes, as a spool file carrying its concatenation
// header, and acknowledged at once: the router joins parts durably in parts/
// (with its concat_timeout, 8- and 16-bit references alike). Holding parts in
// memory until the whole is there would stall an SMSC that allows one
// unacknowledged deliver_sm, and a modem whose storage fills.
//
// # Nothing lost, nothing twice
//
// A message is acknowledged (deliver_sm_resp, or deleted from the SIM) only
// after router.SubmitOnce stored it, keyed by what identifies it on the
// network. A crash between the two makes the network hand it over again and
// the key recognises it: for a modem the fingerprint of the whole TPDU (sender,
// time stamp, reference, text); for SMPP, which carries no time stamp, the
// sender, recipient, header and text of a delivery that was stored but not yet
// acknowledged. Once an SMSC has its deliver_sm_resp it never sends the
// message again, so the key is forgotten and the same text sent later is a
// new message.
package mobile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"time"

	"smsrouter/asteriskconf/smsq"
	"smsrouter/channels/link"
	"smsrouter/internal/numplan"
	"smsrouter/mobile/modem"
	"smsrouter/mobile/smpp"
	"smsrouter/mobile/smstext"
	"smsrouter/router"
)

// Config is one link's receiving side.
type Config struct {
	Link string // the link's name
	// Number is the link's own number, canonical: the recipient of what a
	// modem receives, and of an SMPP delivery to none of Numbers.
	Number string
	// Numbers are all the numbers the link owns (an SMPP account may have
	// several), canonical. Number is one of them.
	Numbers []string
	Plan    numplan.Plan
	WorkDir string // the router's work folder (inbox, seen, rejected)
	// Location is the zone the router reads spool time stamps in.
	Location *time.Location
	Sync     bool // fsync before acknowledging ([queue] sync)
	// Receipts stores a delivery receipt durably (router.Journal.RecordReceipt).
	Receipts func(ctx context.Context, system, ref string, rc router.Receipt) error
	// ReceiptStored, when set, is called after each stored receipt, so the
	// caller can apply it to the journal soon.
	ReceiptStored func()
	// ReceiptIDs says how the SMSC writes message ids in receipts: as its
	// submit_sm_resp gave them ("", the default), or in decimal or hex
	// where submit_sm_resp gave the other (Kannel's msg-id-type).
	ReceiptIDs string
	// Timeout bounds storing one delivery; default 30s.
	Timeout time.Duration
	// Observe, when set, counts what came in: "message", "receipt",
	// "duplicate", "rejected", "failed".
	Observe func(what string)
	Logger  *slog.Logger
}

// ReceiptIDs values.
const (
	ReceiptIDsDecimal = "decimal" // receipts say in decimal what submit_sm_resp said in hex
	ReceiptIDsHex     = "hex"     // receipts say in hex what submit_sm_resp said in decimal
)

// Receiver takes what one link's network hands over.
type Receiver struct {
	cfg   Config
	log   *slog.Logger
	owned map[string]bool
}

// New checks cfg.
func New(cfg Config) (*Receiver, error) {
	if cfg.Link == "" || cfg.WorkDir == "" {
		return nil, errors.New("mobile ingress: no link name or work folder")
	}
	if !router.ValidNumber(cfg.Number) {
		return nil, fmt.Errorf("mobile ingress %s: %w", cfg.Link, router.CheckNumber("the link's number", cfg.Number))
	}
	if cfg.ReceiptIDs != "" && cfg.ReceiptIDs != ReceiptIDsDecimal && cfg.ReceiptIDs != ReceiptIDsHex {
		return nil, fmt.Errorf("mobile ingress %s: receipt_ids %q is neither %q nor %q", cfg.Link, cfg.ReceiptIDs, ReceiptIDsDecimal, ReceiptIDsHex)
	}
	if cfg.Receipts == nil {
		return nil, fmt.Errorf("mobile ingress %s: nowhere to record receipts", cfg.Link)
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Receiver{cfg: cfg, log: cfg.Logger.With("link", cfg.Link), owned: map[string]bool{cfg.Number: true}}
	for _, n := range cfg.Numbers {
		r.owned[n] = true
	}
	return r, nil
}

func (r *Receiver) observe(what string) {
	if r.cfg.Observe != nil {
		r.cfg.Observe(what)
	}
}

// inbound is one message (or part) to queue.
type inbound struct {
	from, to string
	sent     time.Time
	text     string
	concat   smstext.Concat
	key      string // what identifies it on the network (hashed for the file name)
	ackReq   []byte // the acknowledgement the sender asked for (link.AckRequest), nil for none
}

// store queues m once; dup reports a message queued before.
func (r *Receiver) store(m inbound) (id string, dup bool, err error) {
	msg := &smsq.Message{OA: m.from, DA: m.to, SCTS: m.sent.In(r.cfg.Location), DCS: -1, MR: -1, Text: m.text}
	if m.concat.Valid() {
		msg.UDH, msg.HasUDH = concatUDH(m.concat), true
	}
	data, err := msg.Marshal()
	if err != nil {
		return "", false, fmt.Errorf("spool file: %w", err)
	}
	var accepted func(id string) error
	if m.ackReq != nil {
		accepted = func(id string) error { return router.WriteAckRequest(r.cfg.WorkDir, id, m.ackReq, r.cfg.Sync) }
	}
	return router.SubmitOnceWith(r.cfg.WorkDir, m.key, m.to, data, r.cfg.Sync, time.Now(), accepted)
}

// concatUDH is the concatenation element the router reads back: 8-bit
// references as they are, 16-bit ones (SMPP sar_msg_ref_num, IEI 8) in full.
func concatUDH(c smstext.Concat) []byte {
	if c.Ref > 0xff {
		return []byte{0x08, 0x04, byte(c.Ref >> 8), byte(c.Ref), byte(c.Total), byte(c.Seq)}
	}
	return []byte{0x00, 0x03, byte(c.Ref), byte(c.Total), byte(c.Seq)}
}

// key hashes what identifies a message on the network into a file name.
func key(kind, link string, fields ...[]byte) string {
	h := sha256.New()
	h.Write([]byte(kind + "\x00" + link + "\x00"))
	for _, f := range fields {
		fmt.Fprintf(h, "%d:", len(f))
		h.Write(f)
	}
	return kind + "-" + hex.EncodeToString(h.Sum(nil)[:20])
}

// sender reads a sender address. A name (an operator's or a bank's, letters
// and all) cannot be replied to nor carried as a number: the message comes
// from the link's own number with the name before the text.
func (r *Receiver) sender(addr string, ton byte, text string) (from, shown string) {
	switch {
	case addr == "":
		return r.cfg.Number, "[unknown sender] " + text
	case ton == 5 || !router.ValidNumber(strings.TrimPrefix(addr, "+")):
		return r.cfg.Number, "[" + addr + "] " + text
	case ton == 1 && !strings.HasPrefix(addr, "+"):
		addr = "+" + addr
	case ton == 2 && r.cfg.Plan.On():
		// A national number without its trunk prefix.
		addr = "+" + r.cfg.Plan.CountryCode + addr
	}
	n := r.cfg.Plan.Normalize(addr)
	if !router.ValidNumber(n) {
		return r.cfg.Number, "[" + addr + "] " + text
	}
	return n, text
}

// recipient is the number a delivery was for, as the router should see it:
// one of the link's numbers, a PBX extension in the plan's DID range, or
// otherwise the link's own number (so its inbound rule applies and nothing
// is routed back out).
func (r *Receiver) recipient(addr string, ton byte) string {
	if ton == 1 && addr != "" && !strings.HasPrefix(addr, "+") {
		addr = "+" + addr
	}
	n := r.cfg.Plan.Normalize(addr)
	switch {
	case r.owned[n]:
		return n
	case r.cfg.Plan.DIDPrefix != "" && router.ValidNumber(n) && !strings.HasPrefix(n, "+") && n != addr:
		return n
	}
	return r.cfg.Number
}

// SMPP handles one deliver_sm or data_sm (smpp.Config.Handler).
func (r *Receiver) SMPP(d *smpp.Delivery) {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Timeout)
	defer cancel()
	switch {
	case d.Malformed != nil:
		dst, err := router.Quarantine(r.cfg.WorkDir, fmt.Sprintf("%s-%s-%d.pdu", r.cfg.Link, time.Now().UTC().Format("20060102T150405.000"), d.Sequence),
			[]byte(hex.EncodeToString(d.Raw)+"\n"), fmt.Sprintf("link %s: unreadable %s: %v", r.cfg.Link, d.Command, d.Malformed))
		if err != nil {
			r.log.Error("unreadable delivery not quarantined; the SMSC is asked to send it again", "err", err)
			d.Ack(err)
			return
		}
		r.observe("rejected")
		r.log.Warn("unreadable delivery quarantined and refused", "file", dst, "err", d.Malformed)
		d.Ack(smpp.Reject(d.Malformed))
		return
	case d.Receipt != nil:
		rc := d.Receipt
		err := r.cfg.Receipts(ctx, link.System(r.cfg.Link), r.receiptID(rc.MessageID), router.Receipt{
			Stat: rc.Stat, Err: rc.Err, Delivered: rc.State == smpp.StateDelivered || strings.EqualFold(rc.Stat, "DELIVRD"),
			Final: receiptFinal(rc), At: time.Now(),
		})
		if err != nil {
			r.observe("failed")
			r.log.Warn("receipt not stored; the SMSC is asked to send it again", "message_id", rc.MessageID, "err", err)
			d.Ack(err)
			return
		}
		r.observe("receipt")
		d.Ack(nil)
		if r.cfg.ReceiptStored != nil {
			r.cfg.ReceiptStored()
		}
		return
	}
	from, text := r.sender(d.From.Addr, d.From.TON, d.Text)
	to := r.recipient(d.To.Addr, d.To.TON)
	m := inbound{from: from, to: to, sent: d.Received, text: text, concat: d.Concat,
		key: key("smpp", r.cfg.Link, []byte(d.From.Addr), []byte(d.To.Addr), []byte{d.DataCoding}, d.UDH, d.Data,
			[]byte(fmt.Sprint(d.Concat.Ref, d.Concat.Total, d.Concat.Seq)))}
	if req, ok := link.AckRequestOf(r.cfg.Link, d); ok {
		// Answered once the message's fate is final (router/netack.go).
		if b, err := req.Marshal(); err == nil {
			m.ackReq = b
		}
	}
	id, dup, err := r.store(m)
	if err != nil {
		r.observe("failed")
		r.log.Warn("message not stored; the SMSC is asked to send it again", "from", from, "to", to, "err", err)
		d.Ack(err)
		return
	}
	r.logStored(id, dup, m)
	// The SMSC never sends a message again once it has the response, so the
	// key can go: the same text sent later is a new message. If the response
	// is lost with the connection, the SMSC sends it again and the key, kept,
	// recognises it.
	if err := d.Ack(nil); err == nil {
		router.ForgetSeen(r.cfg.WorkDir, m.key)
	} else {
		r.log.Info("acknowledgement lost; the SMSC will send the message again and it will be recognised", "id", id, "err", err)
	}
}

// receiptFinal: DELIVRD, EXPIRED, DELETED, UNDELIV and REJECTD end a
// message's story; ENROUTE, ACCEPTD and UNKNOWN say the SMSC still tries.
func receiptFinal(rc *smpp.Receipt) bool {
	switch rc.State {
	case smpp.StateDelivered, smpp.StateExpired, smpp.StateDeleted, smpp.StateUndeliverable, smpp.StateRejected:
		return true
	case smpp.StateUnknownValue:
		switch strings.ToUpper(rc.Stat) {
		case "DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "REJECTD":
			return true
		}
	}
	return false
}

// receiptID turns a receipt's message id into the form submit_sm_resp gave
// (link.SMPPRef), for SMSCs that write them in another base.
func (r *Receiver) receiptID(id string) string {
	switch r.cfg.ReceiptIDs {
	case ReceiptIDsDecimal:
		if v, ok := new(big.Int).SetString(id, 10); ok {
			id = v.Text(16)
		}
	case ReceiptIDsHex:
		if v, ok := new(big.Int).SetString(id, 16); ok {
			id = v.Text(10)
		}
	}
	return link.SMPPRef(id)
}

func (r *Receiver) logStored(id string, dup bool, m inbound) {
	if dup {
		r.observe("duplicate")
		r.log.Info("message handed over again after a crash; it was queued before", "from", m.from, "to", m.to)
		return
	}
	r.observe("message")
	fields := []any{"id", id, "from", m.from, "to", m.to}
	if m.ackReq != nil {
		fields = append(fields, "acknowledgement", "asked")
	}
	if m.concat.Valid() {
		fields = append(fields, "part", m.concat.Seq, "parts", m.concat.Total, "ref", m.concat.Ref)
	}
	r.log.Info("message from the mobile network queued", fields...)
}

// Modem handles one message the modem holds (modem.Config.Handler). A
// handset's request for a status report is answered by its own SMSC once the
// modem's network took the message: nothing for this end to send, unlike an
// SMPP deliver_sm's registered_delivery (see channels/link/ack.go).
func (r *Receiver) Modem(m *modem.Message) {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Timeout)
	defer cancel()
	switch {
	case m.Malformed != nil:
		dst, err := router.Quarantine(r.cfg.WorkDir, fmt.Sprintf("%s-%s.pdu", r.cfg.Link, m.Fingerprint),
			[]byte(hex.EncodeToString(m.TPDU)+"\n"), fmt.Sprintf("link %s: unreadable message in the modem's storage (index %d): %v", r.cfg.Link, m.Index, m.Malformed))
		if err != nil {
			r.log.Error("unreadable message not quarantined; it stays in the modem", "err", err)
			m.Release()
			return
		}
		r.observe("rejected")
		r.log.Warn("unreadable message quarantined and deleted from the modem", "file", dst, "err", m.Malformed)
		r.ack(m)
		return
	case m.Kind == modem.StatusReport:
		rp := m.Report
		to := r.cfg.Plan.Normalize(rp.Recipient)
		err := r.cfg.Receipts(ctx, link.System(r.cfg.Link), link.ModemRef(to, fmt.Sprint(rp.Reference)), router.Receipt{
			Stat: statusName(rp.Status), Err: fmt.Sprintf("%02x", rp.Status), Delivered: rp.Delivered(), Final: rp.Final(),
			At: time.Now(),
		})
		if err != nil {
			r.observe("failed")
			r.log.Warn("status report not stored; it stays in the modem", "err", err)
			m.Release()
			return
		}
		r.observe("receipt")
		r.ack(m)
		if r.cfg.ReceiptStored != nil {
			r.cfg.ReceiptStored()
		}
		return
	}
	ton := byte(0)
	if strings.HasPrefix(m.From, "+") {
		ton = 1
	}
	from, text := r.sender(m.From, ton, m.Text)
	in := inbound{from: from, to: r.cfg.Number, sent: m.SCTS, text: text, concat: m.Concat,
		key: key("modem", r.cfg.Link, []byte(m.Fingerprint))}
	if in.sent.IsZero() {
		in.sent = time.Now()
	}
	id, dup, err := r.store(in)
	if err != nil {
		r.observe("failed")
		r.log.Warn("message not stored; it stays in the modem", "from", from, "err", err)
		m.Release()
		return
	}
	r.logStored(id, dup, in)
	// The key stays (until CleanSeen): should the deletion not happen before
	// a crash, the message is read again and recognised.
	r.ack(m)
}

func (r *Receiver) ack(m *modem.Message) {
	if err := m.Ack(); err != nil {
		r.log.Warn("stored, but not yet deleted from the modem; it will be recognised if read again", "index", m.Index, "err", err)
	}
}

// statusName names a TP-Status (TS 23.040 9.2.3.15) the way SMPP receipts do.
func statusName(st byte) string {
	switch {
	case st <= 0x02:
		return "DELIVRD"
	case st < 0x20:
		return "DELIVRD"
	case st < 0x40:
		return "ENROUTE"
	case st == 0x46:
		return "EXPIRED"
	case st == 0x45 || st == 0x63:
		return "REJECTD"
	}
	return "UNDELIV"
}

// SeenKeep is how long a modem message's key is remembered: it must outlast
// any time a stored message could sit undeleted in the modem.
const SeenKeep = 30 * 24 * time.Hour
