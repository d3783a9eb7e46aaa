package httpapi

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"smsrouter/router"
	"smsrouter/router/dlr"
)

// KindKannel is the dlr request kind of Kannel's dlr-url callbacks.
const KindKannel = "kannel"

// Values are what a dlr-url's escape codes stand for in one report.
type Values struct {
	Type     int       // %d: the report type (1 delivered, 2 failed, 4 buffered, 8 accepted, 16 rejected)
	Reply    string    // %A, %b: the report's text (an SMPP-style receipt, "ACK/" for 8)
	From, To string    // %p, %P; %q, %Q with a leading 00 as +
	ID       string    // %I, %F: the message's id
	At       time.Time // %t (YYYY-MM-DD HH:MM:SS, UTC, as Kannel), %T (Unix time)
	User     string    // %n: the sendsms user
	Coding   string    // %c
	Charset  string    // %C
	UDH      []byte    // %u
	SMSC     string    // %i
}

// placeholder fills every code, to check that a dlr-url is a URL.
var placeholder = Values{Type: 1, Reply: "x", From: "1", To: "1", ID: "x", At: time.Unix(0, 0), User: "x", Coding: "0", Charset: "x", SMSC: "x"}

// Expand fills in a dlr-url's escape codes as Kannel does, every value
// URL-encoded: %d %A %b %p %P %q %Q %I %F %t %T %n %c %C %u %i %k %%. The codes
// that make no sense for this router (%B billing, %D meta-data, %o account,
// %f SMSC number, %R, %v, %V, %m, %M, %O) give nothing; an unknown code is kept
// as it is, as Kannel keeps it.
func Expand(tmpl string, v Values) string {
	var b strings.Builder
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		if c != '%' || i+1 >= len(tmpl) {
			b.WriteByte(c)
			continue
		}
		i++
		switch code := tmpl[i]; code {
		case 'd':
			b.WriteString(strconv.Itoa(v.Type))
		case 'A', 'b':
			b.WriteString(url.QueryEscape(v.Reply))
		case 'k':
			if f := strings.Fields(v.Reply); len(f) > 0 {
				b.WriteString(url.QueryEscape(f[0]))
			}
		case 'p':
			b.WriteString(url.QueryEscape(v.From))
		case 'P':
			b.WriteString(url.QueryEscape(v.To))
		case 'q':
			b.WriteString(url.QueryEscape(plus(v.From)))
		case 'Q':
			b.WriteString(url.QueryEscape(plus(v.To)))
		case 'I', 'F':
			b.WriteString(url.QueryEscape(v.ID))
		case 't':
			b.WriteString(url.QueryEscape(v.At.UTC().Format("2006-01-02 15:04:05")))
		case 'T':
			b.WriteString(strconv.FormatInt(v.At.Unix(), 10))
		case 'n':
			b.WriteString(url.QueryEscape(v.User))
		case 'c':
			b.WriteString(url.QueryEscape(v.Coding))
		case 'C':
			b.WriteString(url.QueryEscape(v.Charset))
		case 'u':
			b.WriteString(url.QueryEscape(string(v.UDH)))
		case 'i':
			b.WriteString(url.QueryEscape(v.SMSC))
		case 'B', 'D', 'o', 'f', 'R', 'v', 'V', 'm', 'M', 'O':
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(code)
		}
	}
	return b.String()
}

// plus writes an international number's 00 as +, as Kannel's %q does.
func plus(n string) string {
	if rest, ok := strings.CutPrefix(n, "00"); ok {
		return "+" + rest
	}
	return n
}

// Caller makes Kannel's dlr-url callbacks: a dlr.Sender for requests of kind
// KindKannel. It calls with GET and no shell, http and https only; a redirect
// is followed only to the same host (at most three), since the URL was
// vetted for that host and a report carries numbers; any 2xx is success.
type Caller struct {
	client *http.Client
	loc    *time.Location
}

// NewCaller makes a Caller; loc is the zone of the receipts' dates.
func NewCaller(loc *time.Location) *Caller {
	if loc == nil {
		loc = time.Local
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 4
	tr.ResponseHeaderTimeout = 30 * time.Second
	return &Caller{loc: loc, client: &http.Client{Transport: tr, CheckRedirect: sameHost}}
}

func sameHost(req *http.Request, via []*http.Request) error {
	if len(via) >= 3 {
		return dlr.Permanent(fmt.Errorf("more than 3 redirects"))
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" || !strings.EqualFold(req.URL.Host, via[0].URL.Host) {
		return dlr.Permanent(fmt.Errorf("redirected to %s://%s, another host: not followed", req.URL.Scheme, req.URL.Host))
	}
	return nil
}

// Send calls the report's URL with its escape codes filled in.
func (c *Caller) Send(ctx context.Context, rep dlr.Report) error {
	v := c.values(rep)
	u := Expand(rep.Target, v)
	parsed, err := url.Parse(u)
	if err != nil || parsed.Host == "" || parsed.Scheme != "http" && parsed.Scheme != "https" {
		return dlr.Permanent(fmt.Errorf("dlr-url is not an http(s) URL once filled in"))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return dlr.Permanent(fmt.Errorf("dlr-url: %w", err))
	}
	req.Header.Set("User-Agent", "smsrouter")
	resp, err := c.client.Do(req)
	if err != nil {
		if dlr.IsPermanent(err) {
			return err
		}
		// The URL (with its query) stays out of the error: it is logged and kept.
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("calling %s: %w", parsed.Host, ue.Err)
		}
		return fmt.Errorf("calling %s: %w", parsed.Host, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) //nolint:errcheck // only to reuse the connection
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s answered HTTP %d", parsed.Host, resp.StatusCode)
	}
	return nil
}

func (c *Caller) values(rep dlr.Report) Values {
	info := rep.Info
	v := Values{Type: int(rep.Type), From: info["from"], To: info["to"], ID: rep.ID, At: rep.At, User: info["user"],
		Coding: info["coding"], Charset: info["charset"], SMSC: "smsrouter"}
	if v.Coding == "" {
		v.Coding = coding7bit
	}
	if v.Charset == "" {
		v.Charset = "UTF-8"
		if v.Coding == codingUCS2 {
			v.Charset = "UTF-16BE"
		}
	}
	if u, err := hex.DecodeString(info["udh"]); err == nil {
		v.UDH = u
	}
	v.Reply = c.reply(rep)
	return v
}

// reply is the report's text (%A): what an SMPP SMSC puts in a delivery
// receipt, which is what Kannel applications parse (stat:DELIVRD…); "ACK/" for
// the accepted report, as Kannel's own. The message's text is left out.
func (c *Caller) reply(rep dlr.Report) string {
	if rep.Type == dlr.Accepted {
		return "ACK/"
	}
	stat := map[dlr.Type]string{dlr.Delivered: "DELIVRD", dlr.Buffered: "ENROUTE", dlr.Rejected: "REJECTD", dlr.Failed: "UNDELIV"}[rep.Type]
	submitted, done := rep.At, rep.At
	if rec := rep.Record; rec != nil {
		submitted = rec.Received
		if rec.State == router.StateExpired && rep.Type == dlr.Failed {
			stat = "EXPIRED"
		}
		if rec.State == router.StateRejected && rep.Type == dlr.Failed {
			stat = "REJECTD"
		}
		if rec.State.Final() {
			done = rec.Updated
		}
	}
	if rep.Type == dlr.Rejected {
		return "NACK/" + stat
	}
	dlvrd := "000"
	if rep.Type == dlr.Delivered {
		dlvrd = "001"
	}
	const layout = "0601021504"
	return fmt.Sprintf("id:%s sub:001 dlvrd:%s submit date:%s done date:%s stat:%s err:000 text:",
		rep.ID, dlvrd, submitted.In(c.loc).Format(layout), done.In(c.loc).Format(layout), stat)
}
