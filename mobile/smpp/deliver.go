package smpp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"smsrouter/mobile/smstext"
)

// Address is an SMPP address with its type of number and numbering plan.
type Address struct {
	Addr     string
	TON, NPI byte
}

// TLV tags this package reads.
const (
	tagReceiptedMessageID = 0x001E
	tagSarMsgRefNum       = 0x020C
	tagSarTotalSegments   = 0x020E
	tagSarSegmentSeqnum   = 0x020F
	tagUserMessageRef     = 0x0204
	tagNetworkErrorCode   = 0x0423
	tagMessagePayload     = 0x0424
	tagMessageState       = 0x0427
)

// esm_class bits (SMPP 3.4 5.2.12).
const (
	esmUDHI            = 0x40
	esmTypeMask        = 0x3C
	esmSMSCReceipt     = 0x04
	esmIntermediateRcp = 0x20
)

// Delivery is one deliver_sm or data_sm from the SMSC: a mobile-originated
// message (or one part of one) or a delivery receipt. The SMSC gets its
// response when the handler calls Ack, and not before.
type Delivery struct {
	Command     string // "deliver_sm" or "data_sm"
	Sequence    uint32
	Bind        string // the bind it came on: "transceiver" or "receiver"
	From, To    Address
	ServiceType string
	ESMClass    byte
	ProtocolID  byte
	DataCoding  byte
	// RegisteredDelivery is the field as sent; bits 3-2 ask this ESME for an
	// SME acknowledgement (AckAsked).
	RegisteredDelivery byte

	// UDH is the user data header with its length octet, nil when there is
	// none; Data is the user data after it.
	UDH  []byte
	Data []byte
	// Text is Data decoded by DataCoding; Binary marks 8-bit data (then Text
	// holds the octets as Latin-1). TextErr says what could not be decoded.
	Text    string
	Binary  bool
	TextErr error
	// Concat places a part of a concatenated message, from the UDH or the
	// sar_* TLVs; the zero value for a whole message.
	Concat smstext.Concat

	// Receipt is set for a delivery receipt (esm_class says so, or the
	// receipted_message_id TLV is present).
	Receipt *Receipt

	// TLVs holds every optional parameter, by tag.
	TLVs map[uint16][]byte

	// Malformed is set when the PDU could not be read; Raw is the whole PDU
	// then. Such a delivery should be put aside with the reason and
	// acknowledged, or the SMSC will send it again for ever.
	Malformed error
	Raw       []byte

	Received time.Time

	ackOnce sync.Once
	ack     func(Status) error
	acked   bool
}

// ErrAckLost is returned by Ack when the connection the delivery came on is
// gone: the SMSC did not get the response and will deliver the message again.
var ErrAckLost = errors.New("smpp: the connection is gone; the SMSC will deliver again")

// ErrAcked is returned by a second Ack.
var ErrAcked = errors.New("smpp: delivery already acknowledged")

// Ack answers the SMSC. nil: the message is safely stored (ESME_ROK). A
// Reject error: never acceptable (ESME_RX_P_APPN). Any other error: deliver
// again later (ESME_RX_T_APPN).
func (d *Delivery) Ack(err error) error {
	status := StatusOK
	switch {
	case err == nil:
	case errors.Is(err, errRejected):
		status = StatusRxPermAppn
	default:
		status = StatusRxTempAppn
	}
	res := ErrAcked
	d.ackOnce.Do(func() {
		res = nil
		if d.ack != nil {
			res = d.ack(status)
		}
	})
	return res
}

var errRejected = errors.New("rejected for good")

// Reject marks err as permanent for Delivery.Ack.
func Reject(err error) error { return fmt.Errorf("%w: %w", errRejected, err) }

// parseDelivery reads the body of a deliver_sm or data_sm (frame is the
// whole PDU, header first). It never fails: what cannot be read sets
// Malformed.
func parseDelivery(frame []byte, now time.Time) *Delivery {
	h := header(frame)
	d := &Delivery{Sequence: h.seq, Received: now}
	switch h.id {
	case cmdDeliverSM:
		d.Command = "deliver_sm"
	case cmdDataSM:
		d.Command = "data_sm"
	}
	if err := d.readBody(frame[16:], h.id); err != nil {
		d.Malformed = fmt.Errorf("%s: %w", d.Command, err)
		d.Raw = append([]byte(nil), frame...)
	}
	return d
}

func (d *Delivery) readBody(body []byte, id uint32) error {
	r := reader{b: body}
	d.ServiceType = r.cstring("service_type", 6)
	d.From = r.address("source_addr", 65)
	d.To = r.address("destination_addr", 65)
	d.ESMClass = r.byte("esm_class")
	var sm []byte
	if id == cmdDeliverSM {
		d.ProtocolID = r.byte("protocol_id")
		r.byte("priority_flag")
		r.cstring("schedule_delivery_time", 17)
		r.cstring("validity_period", 17)
		d.RegisteredDelivery = r.byte("registered_delivery")
		r.byte("replace_if_present_flag")
		d.DataCoding = r.byte("data_coding")
		r.byte("sm_default_msg_id")
		n := r.byte("sm_length")
		sm = r.bytes("short_message", int(n))
	} else {
		d.RegisteredDelivery = r.byte("registered_delivery")
		d.DataCoding = r.byte("data_coding")
	}
	if r.err != nil {
		return r.err
	}
	tlvs, err := readTLVs(r.b)
	if err != nil {
		return err
	}
	d.TLVs = tlvs
	if p, ok := tlvs[tagMessagePayload]; ok && len(sm) == 0 {
		sm = p
	}
	ud := sm
	if d.ESMClass&esmUDHI != 0 && len(sm) > 0 {
		c, n, ok := smstext.ConcatFromUDH(sm)
		if n == 0 {
			return fmt.Errorf("user data header: length %d does not fit %d octets", sm[0], len(sm))
		}
		d.UDH, ud = sm[:n], sm[n:]
		if ok {
			d.Concat = c
		}
	}
	if d.Concat == (smstext.Concat{}) {
		d.Concat = sarConcat(tlvs)
	}
	d.Data = ud
	d.Text, d.Binary, d.TextErr = smstext.Decode(d.DataCoding, ud)
	if t := d.ESMClass & esmTypeMask; t == esmSMSCReceipt || t == esmIntermediateRcp || tlvs[tagReceiptedMessageID] != nil {
		rc, err := receiptFrom(d.Text, tlvs)
		if err != nil {
			return err
		}
		d.Receipt = rc
	}
	return nil
}

func sarConcat(tlvs map[uint16][]byte) smstext.Concat {
	ref, total, seq := tlvs[tagSarMsgRefNum], tlvs[tagSarTotalSegments], tlvs[tagSarSegmentSeqnum]
	if len(ref) != 2 || len(total) != 1 || len(seq) != 1 {
		return smstext.Concat{}
	}
	c := smstext.Concat{Ref: binary.BigEndian.Uint16(ref), Total: int(total[0]), Seq: int(seq[0])}
	if !c.Valid() {
		return smstext.Concat{}
	}
	return c
}

// receiptFrom combines the receipt text and the 3.4 TLVs; the TLVs win
// where both speak, since they are typed.
func receiptFrom(text string, tlvs map[uint16][]byte) (*Receipt, error) {
	rc, err := ParseReceipt(text)
	id := tlvs[tagReceiptedMessageID]
	state := tlvs[tagMessageState]
	if err != nil && id == nil {
		return nil, fmt.Errorf("delivery receipt: %w", err)
	}
	if id != nil {
		rc.MessageID = string(bytes.TrimRight(id, "\x00"))
	}
	if len(state) == 1 {
		rc.State = MessageState(state[0])
		if rc.Stat == "" {
			rc.Stat = rc.State.String()
		}
	}
	if ne := tlvs[tagNetworkErrorCode]; len(ne) == 3 {
		rc.NetworkError = append([]byte(nil), ne...)
	}
	if rc.MessageID == "" {
		return nil, errors.New("delivery receipt without a message id")
	}
	return &rc, nil
}

// reader walks a PDU body; the first error sticks and later reads give zero
// values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(field, why string) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: %s", field, why)
	}
	r.b = nil
}

func (r *reader) byte(field string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 {
		r.fail(field, "missing")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) bytes(field string, n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.fail(field, fmt.Sprintf("%d octets announced, %d left", n, len(r.b)))
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// cstring reads a NUL-terminated string of at most max octets plus the NUL.
func (r *reader) cstring(field string, max int) string {
	if r.err != nil {
		return ""
	}
	i := bytes.IndexByte(r.b, 0)
	if i < 0 {
		r.fail(field, "no terminating NUL")
		return ""
	}
	if i > max {
		r.fail(field, fmt.Sprintf("%d octets, at most %d allowed", i, max))
		return ""
	}
	s := string(r.b[:i])
	r.b = r.b[i+1:]
	return s
}

func (r *reader) address(field string, max int) Address {
	ton := r.byte(field + "_ton")
	npi := r.byte(field + "_npi")
	return Address{TON: ton, NPI: npi, Addr: r.cstring(field, max)}
}

func readTLVs(b []byte) (map[uint16][]byte, error) {
	var m map[uint16][]byte
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("optional parameter: %d stray octets", len(b))
		}
		tag, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if len(b) < 4+n {
			return nil, fmt.Errorf("optional parameter %#04x: length %d beyond the PDU", tag, n)
		}
		if m == nil {
			m = make(map[uint16][]byte)
		}
		m[tag] = b[4 : 4+n : 4+n]
		b = b[4+n:]
	}
	return m, nil
}
