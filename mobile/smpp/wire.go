package smpp

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/linxGnu/gosmpp/pdu"
)

// Command ids (SMPP 3.4 5.1.2.1).
const (
	respBit              = 0x80000000
	cmdGenericNack       = 0x80000000
	cmdBindReceiver      = 0x00000001
	cmdBindTransmitter   = 0x00000002
	cmdSubmitSM          = 0x00000004
	cmdDeliverSM         = 0x00000005
	cmdUnbind            = 0x00000006
	cmdBindTransceiver   = 0x00000009
	cmdOutbind           = 0x0000000B
	cmdEnquireLink       = 0x00000015
	cmdAlertNotification = 0x00000102
	cmdDataSM            = 0x00000103
	maxPDU               = 64 << 10
	headerLen            = 16
)

type hdr struct {
	length, id uint32
	status     Status
	seq        uint32
}

func header(frame []byte) hdr {
	return hdr{
		length: binary.BigEndian.Uint32(frame),
		id:     binary.BigEndian.Uint32(frame[4:]),
		status: Status(binary.BigEndian.Uint32(frame[8:])),
		seq:    binary.BigEndian.Uint32(frame[12:]),
	}
}

// readFrame reads one whole PDU. A length outside 16..64 KiB leaves the
// stream unreadable, so it is an error that ends the connection.
func readFrame(r *bufio.Reader) ([]byte, error) {
	var l [4]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(l[:])
	if n < headerLen || n > maxPDU {
		return nil, fmt.Errorf("smpp: command_length %d out of range", n)
	}
	frame := make([]byte, n)
	copy(frame, l[:])
	if _, err := io.ReadFull(r, frame[4:]); err != nil {
		return nil, err
	}
	return frame, nil
}

// marshal codes p with the connection's own sequence number: gosmpp numbers
// PDUs from one process-wide counter, and numbers split parts alike.
func marshal(p pdu.PDU, seq uint32) []byte {
	p.SetSequenceNumber(int32(seq))
	buf := pdu.NewBuffer(make([]byte, 0, 64))
	p.Marshal(buf)
	return buf.Bytes()
}

// respondFrame codes a response with status to request seq.
func respondFrame(p pdu.PDU, status Status, seq uint32) []byte {
	b := marshal(p, seq)
	binary.BigEndian.PutUint32(b[8:], uint32(status))
	return b
}

// cstringBody reads the C-string a response body starts with (message_id,
// system_id); responses with an error status often have no body at all.
func cstringBody(frame []byte) string {
	body := frame[headerLen:]
	if i := bytes.IndexByte(body, 0); i >= 0 {
		return string(body[:i])
	}
	return string(body)
}
