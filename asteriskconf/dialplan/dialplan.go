// Package dialplan generates the Asterisk configuration smsrouter needs: the
// extensions.conf contexts through which analogue SMS phones reach the SMS
// Centre and SIP softphones hand over their MESSAGEs, and the manager.conf
// user of the SIP (T) channel. Admins used to edit these by hand; generating
// them keeps the variable names, the FastAGI URLs and the error branch in
// step with the code that serves them.
//
// The output is plain text for an admin to review and #include; nothing here
// touches the files themselves. Every value that reaches the output is checked
// first, because a line break, a ';' (a comment in Asterisk's config parser)
// or a "${" would silently change what the dialplan does.
package dialplan

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"text/template"
)

// Defaults for Options and ManagerOptions.
const (
	DefaultAGIAddr         = "127.0.0.1:4573"
	DefaultSMSCExten       = "9000"
	DefaultSMSCContext     = "smsc"
	DefaultMessagesContext = "messages"
	DefaultManagerUser     = "smsrouter"
	// SecretPlaceholder stands in for the AMI secret: a generated file must
	// never carry a real one (it ends up in terminals, tickets and backups).
	SecretPlaceholder = "CHANGE-ME"
)

// Options describe the dialplan to generate. Zero values take the defaults.
type Options struct {
	// AGIAddr is host:port of smsrouter's FastAGI server (DefaultAGIAddr).
	AGIAddr string
	// SMSCNumber is the SMS Centre's own number, the From of replies the
	// dialplan sends itself. Required.
	SMSCNumber string
	// SMSCExtens are the numbers analogue SMS phones dial to deliver a
	// message (DefaultSMSCExten).
	SMSCExtens []string
	// SMSCContext and MessagesContext name the two contexts.
	SMSCContext     string
	MessagesContext string
	// Drain, when set, is the command line run by System() after each call
	// to the SMS Centre (e.g. "/usr/local/bin/smsrouter drain -q --config
	// /etc/asterisk/smsrouter.toml"). Leave it empty when `smsrouter serve`
	// runs as a service: it sees new files at once.
	Drain string
	// Route makes [messages] use the route handler, which waits for the
	// router's decision, instead of postsms, which only queues.
	Route bool
	// Outcome adds the contexts smsrouter's S, F and V call files run in
	// when [dialplan] outcome is on (OutcomeContexts): they tell FastAGI
	// callresult how the fax, the playback or the dialling went.
	Outcome bool
}

// The outcome contexts, by the letter of the channel whose calls run there.
// A call file starts at extension s; the context pushes a hangup handler
// (extension result) that reports the application's result once the call
// ends, then runs the application on ${SMSROUTER_DATA}. A call nobody
// answered never reaches s: pbx.c runs the failed extension of the call
// file's context instead, on a channel named OutgoingSpoolFailed that
// carries the call file's Setvars and REASON, the dial result.
const (
	OutcomeSMSContext   = "smsrouter-sms"
	OutcomeFaxContext   = "smsrouter-fax"
	OutcomeVoiceContext = "smsrouter-voice"
)

// OutcomeContexts lists the outcome contexts in the order Generate prints them.
var OutcomeContexts = []string{OutcomeSMSContext, OutcomeFaxContext, OutcomeVoiceContext}

// ManagerOptions describe the manager.conf user.
type ManagerOptions struct {
	User   string // DefaultManagerUser
	Secret string // SecretPlaceholder when empty
	// Permit is the one network the user may log in from
	// (127.0.0.1/255.255.255.255 when empty): AMI is unencrypted.
	Permit string
}

func (o *Options) fill() error {
	if o.AGIAddr == "" {
		o.AGIAddr = DefaultAGIAddr
	}
	if len(o.SMSCExtens) == 0 {
		o.SMSCExtens = []string{DefaultSMSCExten}
	}
	if o.SMSCContext == "" {
		o.SMSCContext = DefaultSMSCContext
	}
	if o.MessagesContext == "" {
		o.MessagesContext = DefaultMessagesContext
	}
	if _, port, err := net.SplitHostPort(o.AGIAddr); err != nil || port == "" || !plain(o.AGIAddr, ".:[]-") {
		return fmt.Errorf("dialplan: AGI address %q is not host:port", o.AGIAddr)
	}
	if !isNumber(o.SMSCNumber) {
		return fmt.Errorf("dialplan: SMS Centre number %q is not a number", o.SMSCNumber)
	}
	for _, e := range o.SMSCExtens {
		if !isNumber(e) {
			return fmt.Errorf("dialplan: SMS Centre extension %q is not a number", e)
		}
	}
	for _, c := range []string{o.SMSCContext, o.MessagesContext} {
		if !plain(c, "-_") {
			return fmt.Errorf("dialplan: context name %q: use letters, digits, - and _", c)
		}
	}
	if o.SMSCContext == o.MessagesContext {
		return errors.New("dialplan: the SMS Centre and messages contexts must differ")
	}
	for _, c := range []string{o.SMSCContext, o.MessagesContext} {
		if slices.Contains(OutcomeContexts, c) {
			return fmt.Errorf("dialplan: context name %q is smsrouter's own outcome context", c)
		}
	}
	if err := safeValue("drain command", o.Drain); err != nil {
		return err
	}
	return nil
}

// isNumber is what app_sms carries as an address: an optional + and 1-19 digits.
func isNumber(s string) bool {
	d := strings.TrimPrefix(s, "+")
	if d == "" || len(s) > 19 {
		return false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// plain accepts ASCII letters, digits and the extra characters.
func plain(s, extra string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(extra, c)
		if !ok {
			return false
		}
	}
	return true
}

// safeValue refuses what would change the meaning of a config line: line
// breaks, ';' (starts a comment), and "${"/"$[" (substituted by the dialplan).
func safeValue(what, s string) error {
	if strings.ContainsAny(s, "\r\n\x00;") || strings.Contains(s, "${") || strings.Contains(s, "$[") {
		return fmt.Errorf("dialplan: %s %q may not hold a line break, ';', '${' or '$['", what, s)
	}
	return nil
}

// Generate returns the extensions.conf text: [globals] entries and the SMS
// Centre and messages contexts.
func Generate(o Options) ([]byte, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	script := "postsms"
	if o.Route {
		script = "route"
	}
	var b bytes.Buffer
	err := dialplanTmpl().Execute(&b, struct {
		Options
		Script                string
		SMSCtx, FaxCtx, VoCtx string
	}{o, script, OutcomeSMSContext, OutcomeFaxContext, OutcomeVoiceContext})
	if err != nil {
		return nil, fmt.Errorf("dialplan: %w", err)
	}
	return b.Bytes(), nil
}

// Manager returns the manager.conf user for smsrouter's SIP (T) channel,
// with the least privileges it needs: MessageSend, PJSIPShowEndpoint and
// ContactStatus events.
func Manager(o ManagerOptions) ([]byte, error) {
	if o.User == "" {
		o.User = DefaultManagerUser
	}
	if o.Secret == "" {
		o.Secret = SecretPlaceholder
	}
	if o.Permit == "" {
		o.Permit = "127.0.0.1/255.255.255.255"
	}
	if !plain(o.User, "-_.") {
		return nil, fmt.Errorf("dialplan: manager user %q: use letters, digits, '-', '_' and '.'", o.User)
	}
	if err := safeValue("secret", o.Secret); err != nil || strings.ContainsAny(o.Secret, " \t") {
		return nil, errors.New("dialplan: the secret may not hold white space, a line break or ';'")
	}
	if !plain(o.Permit, "./:") {
		return nil, fmt.Errorf("dialplan: permit %q is not ADDRESS/MASK", o.Permit)
	}
	var b bytes.Buffer
	if err := managerTmpl().Execute(&b, o); err != nil {
		return nil, fmt.Errorf("dialplan: %w", err)
	}
	return b.Bytes(), nil
}

// The templates are parsed on first use, not at package init: every run of
// the binary, a one-shot drain included, would pay for them otherwise.
var dialplanTmpl = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("dialplan").Parse(dialplanText))
})

var managerTmpl = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("manager").Parse(managerText))
})

const dialplanText = `; Generated by ` + "`smsrouter dialplan`" + `. Regenerate rather than edit by hand.
; FastAGI: ` + "`smsrouter serve`" + ` (with [agi] listen set) or ` + "`smsrouter agi`" + ` on {{.AGIAddr}}.

; Asterisk reads only one [globals] section: if extensions.conf has one,
; move these two lines into it.
[globals]
SMSROUTER_AGI=agi://{{.AGIAddr}}
SMSC_NUMBER={{.SMSCNumber}}

; The SMS Centre. An analogue SMS phone dials it; app_sms acts as the centre
; (option s), speaks first (a), takes the caller's number as the sender and
; drops each message into sms/morx, where smsrouter picks it up.
[{{.SMSCContext}}]
{{- range .SMSCExtens}}
exten => {{.}},1,Answer()
 same => n,SMS(${CALLERID(num)},sa)
{{- if $.Drain}}
 same => n,System({{$.Drain}})
{{- end}}
 same => n,Hangup()
{{- end}}

; SIP MESSAGE from softphones (res_pjsip_messaging; point the endpoints'
; message_context here). Asterisk has already answered 202 Accepted, so a
; message that cannot be queued is answered with a MESSAGE of our own.
; The body travels Base64-encoded: AGI cannot carry a line break.
[{{.MessagesContext}}]
exten => _[+0-9].,1,Set(MESSAGE_FROM=${MESSAGE(from)})
 same => n,Set(MSG_B64=${BASE64_ENCODE(${MESSAGE(body)})})
 same => n,AGI(${SMSROUTER_AGI}/{{.Script}})
 same => n,GotoIf($["${AGISTATUS}" != "SUCCESS"]?unavailable)
{{- if .Route}}
 ; DELIVERED, DEFERRED and PENDING need nothing more; for BOUNCED and EXPIRED
 ; the router itself sends the sender a notice.
 same => n,GotoIf($["${SMSROUTER_STATUS}" != "REJECTED" & "${SMSROUTER_STATUS}" != "ERROR"]?done)
{{- else}}
 same => n,GotoIf($["${SMSROUTER_STATUS}" = "QUEUED"]?done)
{{- end}}
 ; Tell the sender why, from the SMS Centre number. Look up the SENDER's own
 ; entry: the old dialplan looked up the recipient here and answered wrongly.
 same => n,GotoIf($["${SMSROUTER_FROM}" = ""]?done)
 same => n,AGI(${SMSROUTER_AGI}/chaninfo?var=SMSROUTER_FROM)
 same => n,GotoIf($["${MSG_CHAN_OPT}" != "T"]?done)
 same => n,Set(MESSAGE(body)=Cannot deliver SMS to ${EXTEN}. ${SMSROUTER_REASON})
 same => n,MessageSend(${TOLOWER(${CUT(MSG_CHAN_EXT,/,1)})}:${CUT(MSG_CHAN_EXT,/,2)},${SMSC_NUMBER})
 same => n(done),Hangup()
 ; smsrouter is not running: nothing was queued and nobody can answer.
 same => n(unavailable),Log(WARNING,SIP MESSAGE to ${EXTEN} from ${MESSAGE_FROM} not queued: no FastAGI at ${SMSROUTER_AGI})
 same => n,Hangup()
{{- if .Outcome}}

; What the PBX saw of smsrouter's own calls ([dialplan] outcome = true): its
; call files start at s in these contexts instead of running SMS, SendFax or
; Playback directly. The hangup handler (result) reports the application's
; result when the answered call ends; failed runs instead when nobody
; answered, with REASON = 0 failure, 1 hung up, 3 no answer, 5 busy,
; 8 congestion. Arguments: message id, attempt, attempts in all, what,
; status[, pages, error]. FAXERROR is URI-encoded: it may hold a comma.
; If FastAGI is down, smsrouter judges by the archived call file alone.
[{{.SMSCtx}}]
exten => s,1,Set(CHANNEL(hangup_handler_push)={{.SMSCtx}},result,1)
 same => n,SMS(${SMSROUTER_DATA})
 same => n,Hangup()
exten => result,1,AGI(${SMSROUTER_AGI}/callresult,${SMSROUTER_ID},${AST_OUTGOING_ATTEMPT},${SMSROUTER_TRIES},sms,ENDED)
 same => n,Return()
exten => failed,1,AGI(${SMSROUTER_AGI}/callresult,${SMSROUTER_ID},${AST_OUTGOING_ATTEMPT},${SMSROUTER_TRIES},dial,${REASON})
 same => n,Hangup()

[{{.FaxCtx}}]
exten => s,1,Set(CHANNEL(hangup_handler_push)={{.FaxCtx}},result,1)
 same => n,SendFax(${SMSROUTER_DATA})
 same => n,Hangup()
exten => result,1,AGI(${SMSROUTER_AGI}/callresult,${SMSROUTER_ID},${AST_OUTGOING_ATTEMPT},${SMSROUTER_TRIES},fax,${FAXSTATUS},${FAXPAGES},${URIENCODE(${FAXERROR})})
 same => n,Return()
exten => failed,1,AGI(${SMSROUTER_AGI}/callresult,${SMSROUTER_ID},${AST_OUTGOING_ATTEMPT},${SMSROUTER_TRIES},dial,${REASON})
 same => n,Hangup()

[{{.VoCtx}}]
exten => s,1,Set(CHANNEL(hangup_handler_push)={{.VoCtx}},result,1)
 same => n,Playback(${SMSROUTER_DATA})
 same => n,Hangup()
exten => result,1,AGI(${SMSROUTER_AGI}/callresult,${SMSROUTER_ID},${AST_OUTGOING_ATTEMPT},${SMSROUTER_TRIES},voice,${PLAYBACKSTATUS})
 same => n,Return()
exten => failed,1,AGI(${SMSROUTER_AGI}/callresult,${SMSROUTER_ID},${AST_OUTGOING_ATTEMPT},${SMSROUTER_TRIES},dial,${REASON})
 same => n,Hangup()
{{- end}}
`

const managerText = `; Generated by ` + "`smsrouter dialplan --manager`" + `: the AMI user of smsrouter's SIP (T)
; channel. It logs in, pings, asks PJSIPShowEndpoint whether a phone is
; reachable, listens for ContactStatus events and sends MessageSend; nothing
; else. Add it to /etc/asterisk/manager.conf, whose [general] section needs
; enabled = yes and should have bindaddr = 127.0.0.1 (AMI is unencrypted).
; Put the same secret in the file named by smsrouter's [sip] secret_file.
[{{.User}}]
secret = {{.Secret}}
deny = 0.0.0.0/0.0.0.0
permit = {{.Permit}}
; read: ContactStatus events. Always name a class: a user without a read
; line may read every class.
read = system
; write: PJSIPShowEndpoint (system) and MessageSend (message).
write = system,message
writetimeout = 1000
displayconnects = no
`
