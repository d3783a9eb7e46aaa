package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"

	"smsrouter/channels"
	"smsrouter/channels/link"
	"smsrouter/internal/numplan"
	"smsrouter/mobile/modem"
	"smsrouter/mobile/smpp"
	"smsrouter/router"
)

// NumbersConfig is [numbers]: the numbering plan (internal/numplan).
type NumbersConfig struct {
	CountryCode         string  `toml:"country_code"`
	InternationalPrefix *string `toml:"international_prefix"`
	NationalPrefix      *string `toml:"national_prefix"`
	ExtensionLength     int     `toml:"extension_length"`
	DIDPrefix           string  `toml:"did_prefix"`
	ShowSenders         string  `toml:"show_senders"`
}

// plan is the numbering plan [numbers] describes; off without a country code.
func (n NumbersConfig) plan() (numplan.Plan, error) {
	intl, nat := "00", "0"
	if n.InternationalPrefix != nil {
		intl = *n.InternationalPrefix
	}
	if n.NationalPrefix != nil {
		nat = *n.NationalPrefix
	}
	p := numplan.Plan{CountryCode: n.CountryCode, InternationalPrefix: intl, NationalPrefix: nat,
		ExtensionLength: n.ExtensionLength, DIDPrefix: n.DIDPrefix, Show: n.ShowSenders}
	if !p.On() {
		if n.DIDPrefix != "" || n.ExtensionLength != 0 || (n.ShowSenders != "" && n.ShowSenders != numplan.ShowInternational) {
			return numplan.Plan{}, errors.New("[numbers]: did_prefix, extension_length and show_senders need country_code")
		}
		return numplan.Plan{}, nil
	}
	if p.Show == "" {
		p.Show = numplan.ShowInternational
	}
	if err := p.Check(); err != nil {
		return numplan.Plan{}, fmt.Errorf("[numbers]: %s", strings.TrimPrefix(err.Error(), "numbers: "))
	}
	return p, nil
}

// RouteConfig is one [[route]].
type RouteConfig struct {
	Prefix  string `toml:"prefix"`
	Pattern string `toml:"pattern"`
	Link    string `toml:"link"`
}

// LinkConfig is one [[link]]: an SMPP account or a GSM modem.
type LinkConfig struct {
	Name string `toml:"name"`
	Kind string `toml:"kind"` // smpp or modem

	// Both kinds.
	Number          string      `toml:"number"`
	Numbers         []string    `toml:"numbers"`
	Inbound         string      `toml:"inbound"`
	InboundFallback string      `toml:"inbound_fallback"`
	InboundTo       []InboundTo `toml:"inbound_to"`
	Source          string      `toml:"source"`
	Text            string      `toml:"text"`
	NotifyFailed    bool        `toml:"notify_failed"`
	SecretsFile     string      `toml:"secrets_file"`
	MaxParts        int         `toml:"max_parts"`
	Receipts        bool        `toml:"receipts"`
	Validity        duration    `toml:"validity"`
	ReconnectMin    duration    `toml:"reconnect_min"`
	ReconnectMax    duration    `toml:"reconnect_max"`

	// SMPP.
	Addr            string   `toml:"addr"`
	SystemID        string   `toml:"system_id"`
	Password        string   `toml:"password"`
	SystemType      string   `toml:"system_type"`
	Bind            string   `toml:"bind"`
	AddrTON         int      `toml:"addr_ton"`
	AddrNPI         int      `toml:"addr_npi"`
	AddressRange    string   `toml:"address_range"`
	SourceTON       int      `toml:"source_ton"`
	SourceNPI       int      `toml:"source_npi"`
	DestTON         int      `toml:"dest_ton"`
	DestNPI         int      `toml:"dest_npi"`
	ServiceType     string   `toml:"service_type"`
	TLS             bool     `toml:"tls"`
	TLSCA           string   `toml:"tls_ca"`
	TLSServerName   string   `toml:"tls_server_name"`
	EnquireLink     duration `toml:"enquire_link"`
	ResponseTimeout duration `toml:"response_timeout"`
	BindTimeout     duration `toml:"bind_timeout"`
	Window          int      `toml:"window"`
	Rate            float64  `toml:"rate"`
	MessagePayload  bool     `toml:"message_payload"`
	ReceiptIDs      string   `toml:"receipt_ids"`

	// Modem.
	Port           string   `toml:"port"`
	Baud           int      `toml:"baud"`
	PIN            string   `toml:"pin"`
	SMSC           string   `toml:"smsc"`
	Storage        string   `toml:"storage"`
	SweepEvery     duration `toml:"sweep_every"`
	CommandTimeout duration `toml:"command_timeout"`
	SendTimeout    duration `toml:"send_timeout"`
}

// InboundTo sends messages to one of an SMPP account's numbers to a PBX
// number of their own.
type InboundTo struct {
	Number string `toml:"number"`
	To     string `toml:"to"`
}

// linkSecrets is the layout of a link's secrets_file.
type linkSecrets struct {
	Password string `toml:"password"`
	PIN      string `toml:"pin"`
}

// InboundFirstWord is the inbound value that reads the extension from the
// text's first word.
const InboundFirstWord = "first_word"

// linkSpec is one link, checked, with its defaults filled in.
type linkSpec struct {
	LinkConfig
	number  string   // canonical
	numbers []string // canonical, number first
	smpp    smpp.Config
	modem   modem.Config
}

// linkSpecs checks every [[link]] against the plan. Passwords and PINs are
// read from secrets files only when readSecrets is set (what runs a link).
func (c Config) linkSpecs(plan numplan.Plan, readSecrets bool) ([]linkSpec, error) {
	var out []linkSpec
	seen := map[string]bool{}
	owner := map[string]string{}
	for i, l := range c.Links {
		where := fmt.Sprintf("[[link]] %d", i+1)
		if l.Name != "" {
			where = fmt.Sprintf("[[link]] %q", l.Name)
		}
		if !channels.ValidLinkName(l.Name) {
			return nil, fmt.Errorf("%s: name must be 1 to 32 of a-z, 0-9, - and _", where)
		}
		if seen[l.Name] {
			return nil, fmt.Errorf("%s: a second link of that name", where)
		}
		seen[l.Name] = true
		s := linkSpec{LinkConfig: l}
		s.number = plan.Normalize(l.Number)
		if !router.ValidNumber(s.number) {
			return nil, fmt.Errorf("%s: number %q: the link's own number (the SIM's, or the SMPP account's) is required, + and digits", where, l.Number)
		}
		s.numbers = []string{s.number}
		for _, n := range l.Numbers {
			cn := plan.Normalize(n)
			if !router.ValidNumber(cn) {
				return nil, fmt.Errorf("%s: numbers: %q is not a number", where, n)
			}
			s.numbers = append(s.numbers, cn)
		}
		for _, n := range s.numbers {
			if o, ok := owner[n]; ok {
				return nil, fmt.Errorf("%s: number %s is also link %s's", where, n, o)
			}
			owner[n] = l.Name
		}
		if l.Inbound == "" {
			s.Inbound = InboundFirstWord
		}
		if s.Inbound != InboundFirstWord && !router.ValidNumber(plan.Normalize(s.Inbound)) {
			return nil, fmt.Errorf("%s: inbound = %q: a PBX number, or %q", where, s.Inbound, InboundFirstWord)
		}
		if l.InboundFallback != "" && (s.Inbound != InboundFirstWord || !router.ValidNumber(plan.Normalize(l.InboundFallback))) {
			return nil, fmt.Errorf("%s: inbound_fallback = %q: a PBX number, with inbound = %q", where, l.InboundFallback, InboundFirstWord)
		}
		for _, it := range l.InboundTo {
			n := plan.Normalize(it.Number)
			if owner[n] != l.Name {
				return nil, fmt.Errorf("%s: inbound_to number %q is not one of the link's numbers", where, it.Number)
			}
			if !router.ValidNumber(plan.Normalize(it.To)) {
				return nil, fmt.Errorf("%s: inbound_to %q: to = %q is not a number", where, it.Number, it.To)
			}
		}
		if s.Source == "" {
			s.Source = link.SourceNumber
		}
		if s.Source == link.SourceSender && plan.DIDPrefix == "" {
			return nil, fmt.Errorf("%s: source = %q needs [numbers] did_prefix", where, link.SourceSender)
		}
		if s.Text == "" {
			s.Text = link.DefaultText
		}
		secrets := linkSecrets{Password: l.Password, PIN: l.PIN}
		if l.SecretsFile != "" && readSecrets {
			sec, err := readLinkSecrets(l.SecretsFile)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			if sec.Password != "" {
				secrets.Password = sec.Password
			}
			if sec.PIN != "" {
				secrets.PIN = sec.PIN
			}
		}
		var err error
		switch l.Kind {
		case "smpp":
			err = s.smppConfig(secrets)
		case "modem":
			err = s.modemConfig(secrets)
		default:
			err = fmt.Errorf("kind = %q: smpp or modem", l.Kind)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// only reports the keys of the other kind that were set: a modem's port on an
// SMPP link is a mistake worth saying.
func (s *linkSpec) smppConfig(sec linkSecrets) error {
	l := s.LinkConfig
	if l.Port != "" || l.PIN != "" || l.SMSC != "" || l.Storage != "" || l.Baud != 0 {
		return errors.New("port, pin, smsc, storage and baud are modem keys")
	}
	if l.Addr == "" || l.SystemID == "" {
		return errors.New("addr and system_id are required")
	}
	bind := map[string]smpp.BindMode{"": smpp.Transceiver, "transceiver": smpp.Transceiver,
		"transmitter+receiver": smpp.TransmitterReceiver, "transmitter": smpp.Transmitter}
	mode, ok := bind[l.Bind]
	if !ok {
		return fmt.Errorf("bind = %q: transceiver, transmitter+receiver or transmitter", l.Bind)
	}
	for _, v := range []int{l.AddrTON, l.AddrNPI, l.SourceTON, l.SourceNPI, l.DestTON, l.DestNPI} {
		if v < 0 || v > 255 {
			return errors.New("TON and NPI values are 0 to 255")
		}
	}
	if l.ReceiptIDs != "" && l.ReceiptIDs != "decimal" && l.ReceiptIDs != "hex" {
		return fmt.Errorf("receipt_ids = %q: \"\", \"decimal\" or \"hex\"", l.ReceiptIDs)
	}
	s.smpp = smpp.Config{
		Addr: l.Addr, SystemID: l.SystemID, Password: sec.Password, SystemType: l.SystemType, Bind: mode,
		AddrTON: byte(l.AddrTON), AddrNPI: byte(l.AddrNPI), AddressRange: l.AddressRange,
		SourceTON: byte(l.SourceTON), SourceNPI: byte(l.SourceNPI), DestTON: byte(l.DestTON), DestNPI: byte(l.DestNPI),
		ServiceType: l.ServiceType, EnquireLink: l.EnquireLink.Duration, ResponseTimeout: l.ResponseTimeout.Duration,
		BindTimeout: l.BindTimeout.Duration, Window: l.Window, Rate: l.Rate,
		ReconnectMin: l.ReconnectMin.Duration, ReconnectMax: l.ReconnectMax.Duration,
		UsePayload: l.MessagePayload, RegisteredDelivery: l.Receipts, MaxParts: l.MaxParts,
	}
	if l.TLS {
		tc, err := smpp.NewTLSConfig(l.TLSCA, cmpOr(l.TLSServerName, hostOf(l.Addr)))
		if err != nil {
			return err
		}
		s.smpp.TLS = tc
	} else if l.TLSCA != "" || l.TLSServerName != "" {
		return errors.New("tls_ca and tls_server_name need tls = true")
	}
	if mode != smpp.Transmitter {
		s.smpp.Handler = func(*smpp.Delivery) {} // replaced when the link runs
	}
	_, err := smpp.New(s.smpp) // the client's own checks (lengths of system_id, password…)
	return err
}

func (s *linkSpec) modemConfig(sec linkSecrets) error {
	l := s.LinkConfig
	if l.Addr != "" || l.SystemID != "" || l.Password != "" || l.Bind != "" || l.Window != 0 || l.TLS {
		return errors.New("addr, system_id, password, bind, window and tls are SMPP keys")
	}
	if l.Port == "" {
		return errors.New("port is required (best a /dev/serial/by-id/... link)")
	}
	if l.Source != link.SourceNumber && l.Source != "" {
		return errors.New("a modem always sends from its SIM's number: leave source out")
	}
	s.modem = modem.Config{
		Port: l.Port, Baud: l.Baud, PIN: sec.PIN, SMSC: l.SMSC, Storage: l.Storage, SweepEvery: l.SweepEvery.Duration,
		CommandTimeout: l.CommandTimeout.Duration, SendTimeout: l.SendTimeout.Duration,
		ReopenMin: l.ReconnectMin.Duration, ReopenMax: l.ReconnectMax.Duration,
		StatusReports: l.Receipts, Validity: l.Validity.Duration, MaxParts: l.MaxParts,
		Handler: func(*modem.Message) {}, // replaced when the link runs
	}
	_, err := modem.New(s.modem)
	return err
}

func readLinkSecrets(path string) (linkSecrets, error) {
	var s linkSecrets
	st, err := os.Stat(path)
	if err != nil {
		return s, fmt.Errorf("secrets_file: %w", err)
	}
	if st.Mode().Perm()&0o007 != 0 {
		return s, fmt.Errorf("secrets_file %s is readable by others (mode %v): chmod o-rwx it", path, st.Mode().Perm())
	}
	md, err := toml.DecodeFile(path, &s)
	if err != nil {
		return s, fmt.Errorf("secrets_file %s: %w", path, err)
	}
	if undec := md.Undecoded(); len(undec) > 0 {
		return s, fmt.Errorf("secrets_file %s: unknown keys: %v (password, pin)", path, undec)
	}
	return s, nil
}

// routes checks [[route]] against the links.
func (c Config) routes(plan numplan.Plan, names map[string]bool) ([]router.Route, error) {
	var out []router.Route
	for i, r := range c.Routes {
		where := fmt.Sprintf("[[route]] %d", i+1)
		if !names[r.Link] {
			return nil, fmt.Errorf("%s: link = %q names no [[link]]", where, r.Link)
		}
		rt := router.Route{Link: r.Link}
		switch {
		case r.Prefix != "" && r.Pattern != "":
			return nil, fmt.Errorf("%s: give prefix or pattern, not both", where)
		case r.Prefix != "":
			// Compared with canonical numbers, and only numbers outside the PBX
			// (+ and digits) are routed when there is a plan.
			if plan.On() && !strings.HasPrefix(r.Prefix, "+") {
				return nil, fmt.Errorf("%s: prefix %q: with a numbering plan, numbers are compared as +<country><number>: write \"+48\", not \"0048\" or \"0\"", where, r.Prefix)
			}
			rt.Prefix = r.Prefix
		case r.Pattern != "":
			re, err := regexp.Compile(r.Pattern)
			if err != nil {
				return nil, fmt.Errorf("%s: pattern: %w", where, err)
			}
			rt.Pattern = re
		default:
			if i != len(c.Routes)-1 {
				return nil, fmt.Errorf("%s: a route without prefix or pattern takes every number, so it must be the last", where)
			}
		}
		out = append(out, rt)
	}
	return out, nil
}

// inbound maps every link number to where its messages go.
func inboundMap(plan numplan.Plan, specs []linkSpec) map[string]router.Inbound {
	if len(specs) == 0 {
		return nil
	}
	out := map[string]router.Inbound{}
	for _, s := range specs {
		def := router.Inbound{Link: s.Name}
		if s.Inbound == InboundFirstWord {
			def.FirstWord = true
			if s.InboundFallback != "" {
				def.Fallback = plan.Normalize(s.InboundFallback)
			}
		} else {
			def.To = plan.Normalize(s.Inbound)
		}
		for _, n := range s.numbers {
			out[n] = def
		}
		for _, it := range s.InboundTo {
			out[plan.Normalize(it.Number)] = router.Inbound{Link: s.Name, To: plan.Normalize(it.To)}
		}
	}
	return out
}

// markerDir is where a link's channel keeps its per-message markers.
func (c Config) markerDir(name string) string {
	return filepath.Join(c.workDir(), "link-sent", name)
}

// statusFile is where serve writes a link's state for doctor.
func (c Config) statusFile(name string) string {
	return filepath.Join(c.workDir(), "link-status", name+".json")
}

func hostOf(addr string) string {
	h, _, ok := strings.Cut(addr, ":")
	if !ok {
		return addr
	}
	return h
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
