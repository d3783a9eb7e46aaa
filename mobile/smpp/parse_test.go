package smpp

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"smsrouter/mobile/smstext"
)

func TestParseReceipt(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    Receipt
		wantErr bool
	}{
		{"appendix B", "id:0123456789 sub:001 dlvrd:001 submit date:2501021504 done date:2501021505 stat:DELIVRD err:000 text:Hello world",
			Receipt{MessageID: "0123456789", Sub: "001", Dlvrd: "001", Stat: "DELIVRD", State: StateDelivered, Err: "000", Text: "Hello world",
				SubmitDate: time.Date(2025, 1, 2, 15, 4, 0, 0, time.UTC), DoneDate: time.Date(2025, 1, 2, 15, 5, 0, 0, time.UTC)}, false},
		{"capital Text, seconds, underscores", "id:ab12 sub:001 dlvrd:000 submit_date:250102150401 done_date:250102150559 stat:UNDELIV err:0x1F Text:Cześć",
			Receipt{MessageID: "ab12", Sub: "001", Dlvrd: "000", Stat: "UNDELIV", State: StateUndeliverable, Err: "0x1F", Text: "Cześć",
				SubmitDate: time.Date(2025, 1, 2, 15, 4, 1, 0, time.UTC), DoneDate: time.Date(2025, 1, 2, 15, 5, 59, 0, time.UTC)}, false},
		{"minimal, other order", "stat:EXPIRED id:7",
			Receipt{MessageID: "7", Stat: "EXPIRED", State: StateExpired}, false},
		{"text holding key-like words", "id:1 stat:DELIVRD err:000 text:stat:UNDELIV id:2",
			Receipt{MessageID: "1", Stat: "DELIVRD", State: StateDelivered, Err: "000", Text: "stat:UNDELIV id:2"}, false},
		{"bad date left zero", "id:1 submit date:99999 stat:ACCEPTD",
			Receipt{MessageID: "1", Stat: "ACCEPTD", State: StateAccepted}, false},
		{"not a receipt", "Hello, how are you?", Receipt{}, true},
		{"no stat", "id:1 sub:001", Receipt{}, true},
		{"empty id", "id: stat:DELIVRD", Receipt{}, true},
		{"hidden keys are not keys", "grid:1 status:DELIVRD", Receipt{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseReceipt(tt.text)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if !tt.wantErr && !receiptEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func receiptEqual(a, b Receipt) bool {
	return a.MessageID == b.MessageID && a.Stat == b.Stat && a.State == b.State && a.Err == b.Err &&
		a.Sub == b.Sub && a.Dlvrd == b.Dlvrd && a.SubmitDate.Equal(b.SubmitDate) && a.DoneDate.Equal(b.DoneDate) && a.Text == b.Text
}

func TestSameMessageID(t *testing.T) {
	tests := []struct {
		a, b string
		same bool
	}{
		{"1A2B", "1a2b", true},
		{"1A", "26", true},       // hex in submit_sm_resp, decimal in the receipt
		{"0000001A", "1a", true}, // padding
		{"abc", "abd", false},
		{"", "", true},
		{"", "0", false},
		{"12", "13", false},
	}
	for _, tt := range tests {
		if got := SameMessageID(tt.a, tt.b); got != tt.same {
			t.Errorf("SameMessageID(%q, %q) = %v", tt.a, tt.b, got)
		}
	}
}

// pduFrame builds a PDU: header, then body.
func pduFrame(id, seq uint32, body []byte) []byte {
	b := make([]byte, 16, 16+len(body))
	binary.BigEndian.PutUint32(b, uint32(16+len(body)))
	binary.BigEndian.PutUint32(b[4:], id)
	binary.BigEndian.PutUint32(b[12:], seq)
	return append(b, body...)
}

func deliverBody(esm, dc byte, sm []byte, tlvs ...[]byte) []byte {
	var b bytes.Buffer
	b.WriteString("\x00")            // service_type
	b.Write([]byte{1, 1})            // source ton npi
	b.WriteString("48600111222\x00") // source
	b.Write([]byte{0, 1})            // dest ton npi
	b.WriteString("1001\x00")        // dest
	b.Write([]byte{esm, 0, 0})       // esm_class protocol_id priority
	b.WriteString("\x00\x00")        // schedule, validity
	b.Write([]byte{0, 0, dc, 0, byte(len(sm))})
	b.Write(sm)
	for _, t := range tlvs {
		b.Write(t)
	}
	return b.Bytes()
}

func tlv(tag uint16, v []byte) []byte {
	b := []byte{byte(tag >> 8), byte(tag), byte(len(v) >> 8), byte(len(v))}
	return append(b, v...)
}

func TestParseDelivery(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name      string
		frame     []byte
		text      string
		concat    smstext.Concat
		receipt   string // expected receipt message id, "" for none
		malformed string // substring of the error, "" for none
	}{
		{"gsm", pduFrame(cmdDeliverSM, 7, deliverBody(0, 0, []byte("Hi"))), "Hi", smstext.Concat{}, "", ""},
		{"udh concat", pduFrame(cmdDeliverSM, 7, deliverBody(0x40, 0, []byte{5, 0, 3, 9, 2, 1, 'A'})), "A", smstext.Concat{Ref: 9, Total: 2, Seq: 1}, "", ""},
		{"sar tlvs", pduFrame(cmdDeliverSM, 7, deliverBody(0, 0, []byte("B"),
			tlv(tagSarMsgRefNum, []byte{1, 2}), tlv(tagSarTotalSegments, []byte{3}), tlv(tagSarSegmentSeqnum, []byte{2}))),
			"B", smstext.Concat{Ref: 0x102, Total: 3, Seq: 2}, "", ""},
		{"receipt by tlv only", pduFrame(cmdDeliverSM, 7, deliverBody(0x04, 0, nil,
			tlv(tagReceiptedMessageID, []byte("AB12\x00")), tlv(tagMessageState, []byte{2}))), "", smstext.Concat{}, "AB12", ""},
		{"receipt flagged, garbage text", pduFrame(cmdDeliverSM, 7, deliverBody(0x04, 0, []byte("nonsense"))), "", smstext.Concat{}, "", "receipt"},
		{"udh length beyond data", pduFrame(cmdDeliverSM, 7, deliverBody(0x40, 0, []byte{9, 0, 3})), "", smstext.Concat{}, "", "header"},
		{"udhl zero", pduFrame(cmdDeliverSM, 7, deliverBody(0x40, 0, []byte{0, 'Z'})), "Z", smstext.Concat{}, "", ""},
		{"sm_length beyond body", pduFrame(cmdDeliverSM, 7, overlong()), "", smstext.Concat{}, "", "short_message"},
		{"unterminated address", pduFrame(cmdDeliverSM, 7, []byte("\x00\x01\x01486001")), "", smstext.Concat{}, "", "NUL"},
		{"tlv overrun", pduFrame(cmdDeliverSM, 7, deliverBody(0, 0, []byte("x"), []byte{0x04, 0x24, 0, 9, 1})), "", smstext.Concat{}, "", "optional parameter"},
		{"data_sm payload", pduFrame(cmdDataSM, 7, append([]byte("\x00\x01\x01123\x00\x00\x01456\x00\x00\x00\x08"),
			tlv(tagMessagePayload, []byte{0, 'o', 0, 'k'})...)), "ok", smstext.Concat{}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := parseDelivery(tt.frame, now)
			if tt.malformed != "" {
				if d.Malformed == nil || !strings.Contains(d.Malformed.Error(), tt.malformed) || !bytes.Equal(d.Raw, tt.frame) {
					t.Fatalf("malformed = %v, want one about %q with the raw PDU", d.Malformed, tt.malformed)
				}
				return
			}
			if d.Malformed != nil {
				t.Fatal(d.Malformed)
			}
			if d.Text != tt.text || d.Concat != tt.concat || d.Sequence != 7 {
				t.Errorf("text %q concat %+v seq %d", d.Text, d.Concat, d.Sequence)
			}
			if (d.Receipt != nil) != (tt.receipt != "") || (d.Receipt != nil && d.Receipt.MessageID != tt.receipt) {
				t.Errorf("receipt %+v, want id %q", d.Receipt, tt.receipt)
			}
		})
	}
}

// overlong announces 10 octets of short_message and carries 2.
func overlong() []byte {
	b := deliverBody(0, 0, []byte("Hi"))
	b[len(b)-3] = 10
	return b
}

func TestReadFrame(t *testing.T) {
	good := pduFrame(cmdEnquireLink, 1, nil)
	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"whole", good, true},
		{"short length", []byte{0, 0, 0, 8, 0, 0, 0, 0}, false},
		{"huge length", []byte{0, 1, 0, 1, 0, 0, 0, 0}, false},
		{"truncated", good[:10], false},
	}
	for _, tt := range tests {
		f, err := readFrame(bufio.NewReader(bytes.NewReader(tt.in)))
		if (err == nil) != tt.ok || (tt.ok && !bytes.Equal(f, good)) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

func TestAddressAndValidity(t *testing.T) {
	c := &Client{}
	tests := []struct {
		in       string
		ton, npi byte
		addr     string
		bad      bool
	}{
		{"+48600111222", 1, 1, "48600111222", false},
		{"600111222", 2, 3, "600111222", false},
		{"Biuro", 5, 0, "Biuro", false},
		{"A very long sender", 0, 0, "", true},
		{"bad\nsender", 0, 0, "", true},
	}
	for _, tt := range tests {
		a, err := c.address(tt.in, 2, 3)
		if (err != nil) != tt.bad {
			t.Errorf("%q: err %v", tt.in, err)
			continue
		}
		if !tt.bad && (a.Ton() != tt.ton || a.Npi() != tt.npi || a.Address() != tt.addr) {
			t.Errorf("%q: %d/%d %q", tt.in, a.Ton(), a.Npi(), a.Address())
		}
	}
	if got := relativeTime(26*time.Hour + 3*time.Minute + 4*time.Second); got != "000001020304000R" {
		t.Errorf("relative validity %q", got)
	}
}

func FuzzParseReceipt(f *testing.F) {
	f.Add("id:0123456789 sub:001 dlvrd:001 submit date:2501021504 done date:2501021505 stat:DELIVRD err:000 text:Hello")
	f.Add("stat:x id:y")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseReceipt(s)
		if err == nil && (r.MessageID == "" || r.Stat == "" && r.State == 0) {
			t.Fatalf("accepted %q without id or stat: %+v", s, r)
		}
	})
}

func FuzzParseDelivery(f *testing.F) {
	f.Add(deliverBody(0, 0, []byte("Hi")), false)
	f.Add(deliverBody(0x40, 8, []byte{5, 0, 3, 1, 2, 1, 0, 'x'}), false)
	f.Add(deliverBody(0x04, 0, []byte("id:1 stat:DELIVRD"), tlv(tagMessageState, []byte{2})), false)
	f.Add(append([]byte("\x00\x01\x01123\x00\x00\x01456\x00\x00\x00\x08"), tlv(tagMessagePayload, []byte{0, 'o'})...), true)
	f.Fuzz(func(t *testing.T, body []byte, dataSM bool) {
		id := uint32(cmdDeliverSM)
		if dataSM {
			id = cmdDataSM
		}
		frame := pduFrame(id, 1, body)
		d := parseDelivery(frame, time.Time{})
		if d.Malformed == nil {
			if !utf8.ValidString(d.Text) {
				t.Fatal("text is not UTF-8")
			}
			if d.Concat != (smstext.Concat{}) && !d.Concat.Valid() {
				t.Fatalf("invalid concat %+v", d.Concat)
			}
		} else if !bytes.Equal(d.Raw, frame) {
			t.Fatal("malformed without the raw PDU")
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	f.Add(pduFrame(cmdEnquireLink, 1, nil))
	f.Add([]byte{0, 0, 0, 20, 0, 0, 0, 5})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := readFrame(bufio.NewReader(bytes.NewReader(b)))
		if err == nil && (len(fr) < headerLen || int(binary.BigEndian.Uint32(fr)) != len(fr)) {
			t.Fatalf("frame of %d octets says %d", len(fr), binary.BigEndian.Uint32(fr))
		}
	})
}
