package httpapi

import (
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"smsrouter/router"
)

func FuzzExpand(f *testing.F) {
	for _, s := range []string{"http://h/?t=%d&a=%A&p=%p", "%", "%%%", "%#a#b#", "%q%Q%u%t%T", "x%"} {
		f.Add(s, "0048123", "id:1 stat:DELIVRD")
	}
	f.Fuzz(func(t *testing.T, tmpl, from, reply string) {
		v := Values{Type: 2, Reply: reply, From: from, To: "5551001", ID: "1795239855123-0a1b2c3d4e", At: time.Unix(1_800_000_000, 0), UDH: []byte(reply)}
		out := Expand(tmpl, v)
		// The values are URL-encoded: none of them can add a query separator or
		// a fragment of its own.
		if strings.Count(out, "&")+strings.Count(out, "#") > strings.Count(tmpl, "&")+strings.Count(tmpl, "#") {
			t.Fatalf("a value broke out of its parameter: %q → %q", tmpl, out)
		}
	})
}

func FuzzDecodeText(f *testing.F) {
	for _, c := range [][3]string{{"hi", "", ""}, {"\x00H", "2", ""}, {"caf\xe9", "0", "ISO-8859-1"}, {"\xd8\x00", "2", "UTF-16BE"}, {"x", "0", "windows-1250"}, {"x", "0", "nonsense"}} {
		f.Add(c[0], c[1], c[2])
	}
	f.Fuzz(func(t *testing.T, raw, coding, charset string) {
		text, e := decodeText(raw, coding, charset)
		if e == nil && !utf8.ValidString(text) {
			t.Fatalf("decoded %q (%s/%s) into invalid UTF-8", raw, coding, charset)
		}
		if e != nil && (e.Code == "" || e.Message == "") {
			t.Fatalf("an error without words: %+v", e)
		}
	})
}

func FuzzParseCursor(f *testing.F) {
	f.Add(formatCursor(router.Cursor{Received: time.UnixMilli(1795239855123), ID: "1795239855123-0a1b2c3d4e"}))
	f.Add("")
	f.Add("MTIzLi4vLi4veA")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseCursor(s)
		if err != nil {
			return
		}
		if back, err := parseCursor(formatCursor(c)); err != nil || back != c {
			t.Fatalf("%q: %v does not round-trip: %v %v", s, c, back, err)
		}
		if strings.ContainsAny(c.ID, "/.\\") {
			t.Fatalf("cursor id %q", c.ID)
		}
	})
}

func FuzzCheckDLRURL(f *testing.F) {
	for _, s := range []string{"http://h/?t=%d", "ftp://x", "/rel", "http://", "https://[::1]:8080/x?%A"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if checkDLRURL(s) != nil {
			return
		}
		u, err := url.Parse(strings.ReplaceAll(Expand(s, placeholder), " ", "%20"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			t.Fatalf("accepted %q", s)
		}
	})
}
