package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	commandch "smsrouter/channels/command"
	"smsrouter/internal/tomlduration"
	"smsrouter/router"
)

// Config is the whole configuration file; smsrouter.example.toml documents it.
type Config struct {
	Spool      string `toml:"spool"`
	WorkDir    string `toml:"work_dir"`
	DB         string `toml:"db"`
	SMSCNumber string `toml:"smsc_number"`
	Timezone   string `toml:"timezone"`

	Queue   QueueConfig    `toml:"queue"`
	Notices router.Notices `toml:"notices"`
	SMS     SMSConfig      `toml:"sms"`
	Fax     FaxConfig      `toml:"fax"`
	Voice   VoiceConfig    `toml:"voice"`
	SIP     SIPConfig      `toml:"sip"`
	AGI     AGIConfig      `toml:"agi"`
	Log     LogConfig      `toml:"log"`

	// Operations (ops_config.go): delivery evidence, the HTTP send API, metrics.
	Evidence EvidenceConfig `toml:"evidence"`
	HTTP     HTTPConfig     `toml:"http"`
	Metrics  MetricsConfig  `toml:"metrics"`
	// The web console under /ui/ on the HTTP listener (console.go).
	Console ConsoleConfig `toml:"console"`
	// The journal's retention (journal_config.go) and delivery reports (reports.go).
	Journal JournalConfig `toml:"journal"`
	DLR     DLRConfig     `toml:"dlr"`

	// Reaching the person (ways_config.go): retry rules per failure cause and
	// the status reports a sender may ask for.
	Retry         map[string]RetryRuleConfig `toml:"retry"`
	StatusReports StatusReportsConfig        `toml:"reports"`

	// Command holds the rules of the command services (letter C).
	Command commandch.Config `toml:"command"`

	// Dialplan is what `smsrouter dialplan` prints and doctor compares.
	Dialplan DialplanConfig `toml:"dialplan"`

	// The mobile network (links_config.go): the numbering plan, the links
	// (SMPP accounts, GSM modems) and the routes to them.
	Numbers NumbersConfig `toml:"numbers"`
	Links   []LinkConfig  `toml:"link"`
	Routes  []RouteConfig `toml:"route"`

	// Reaching the person (reach_config.go): quiet hours, the duplicate and
	// loop guards, self-service by SMS.
	Quiet       QuietConfig       `toml:"quiet"`
	Guards      GuardsConfig      `toml:"guards"`
	SelfService SelfServiceConfig `toml:"selfservice"`
}

// QueueConfig tunes the queue.
type QueueConfig struct {
	DefaultValidity duration `toml:"default_validity"`
	RetryMin        duration `toml:"retry_min"`
	RetryMax        duration `toml:"retry_max"`
	ConcatTimeout   duration `toml:"concat_timeout"`
	Settle          duration `toml:"settle"`
	Rescan          duration `toml:"rescan"`
	BatchSize       int      `toml:"batch_size"`
	Parallel        int      `toml:"parallel"`
	DeliveryTimeout duration `toml:"delivery_timeout"`
	Sync            *bool    `toml:"sync"`
	RepairUTF8      bool     `toml:"repair_utf8"`
}

// SMSConfig tunes the S channel's call files.
type SMSConfig struct {
	CallerIDName string `toml:"caller_id_name"`
	WaitTime     int    `toml:"wait_time"`
	MaxRetries   int    `toml:"max_retries"`
	RetryTime    int    `toml:"retry_time"`
	MaxParts     int    `toml:"max_parts"`
	Archive      bool   `toml:"archive"`
}

// FaxConfig tunes the F channel: the page layout and the SendFax call files.
type FaxConfig struct {
	Dir            string   `toml:"dir"`
	Resolution     string   `toml:"resolution"`
	FontFile       string   `toml:"font_file"`
	FontSize       float64  `toml:"font_size"`
	Header         string   `toml:"header"`
	DateFormat     string   `toml:"date_format"`
	PDF            bool     `toml:"pdf"`
	CallerIDName   string   `toml:"caller_id_name"`
	LocalStationID string   `toml:"localstationid"`
	HeaderInfo     string   `toml:"headerinfo"`
	ECM            *bool    `toml:"ecm"`
	MinRate        int      `toml:"minrate"`
	MaxRate        int      `toml:"maxrate"`
	WaitTime       int      `toml:"wait_time"`
	MaxRetries     int      `toml:"max_retries"`
	RetryTime      int      `toml:"retry_time"`
	Archive        bool     `toml:"archive"`
	Keep           duration `toml:"keep"`
}

// LogConfig chooses the log output.
type LogConfig struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // text or json
	Output string `toml:"output"` // stderr (journald) or syslog
}

// duration reads "30s", "10m", "24h" from TOML.
type duration = tomlduration.Duration

// defaultConfig is what runs with no file at all: the embedded SQLite directory
// beside the work folder, and Asterisk's default spool.
func defaultConfig() Config {
	return Config{Spool: "/var/spool/asterisk", SMSCNumber: "9001"}
}

// systemConfig is where an installed smsrouter keeps its configuration (`make
// install` puts the example there, the systemd unit names it).
const systemConfig = "/etc/asterisk/smsrouter.toml"

// configChoice is which configuration a command uses, and why.
type configChoice struct {
	path string // "" for the built-in defaults
	from string // how it was chosen, for -v and doctor
}

func (c configChoice) String() string {
	if c.path == "" {
		return "built-in defaults (" + c.from + ")"
	}
	return c.path + " (" + c.from + ")"
}

// findConfig picks the configuration file: --config, else $SMSROUTER_CONFIG,
// else the system file if it exists, else none (the built-in defaults). A file
// named by the first two must exist; the system file is optional, but one that
// cannot even be looked at is an error rather than a silent fall-back to
// defaults that would point at other folders.
func findConfig(flagPath, envPath, systemPath string) (configChoice, error) {
	switch {
	case flagPath != "":
		return configChoice{flagPath, "--config"}, nil
	case envPath != "":
		return configChoice{envPath, "$SMSROUTER_CONFIG"}, nil
	case systemPath != "":
		_, err := os.Stat(systemPath)
		switch {
		case err == nil:
			return configChoice{systemPath, "the system configuration"}, nil
		case !errors.Is(err, os.ErrNotExist):
			return configChoice{}, fmt.Errorf("config %s: %w (name a file with --config)", systemPath, err)
		}
		return configChoice{"", "no --config, no $SMSROUTER_CONFIG, no " + systemPath}, nil
	}
	return configChoice{"", "no --config, no $SMSROUTER_CONFIG"}, nil
}

// loadConfig reads path (if not empty) over the defaults. Unknown keys are errors:
// a typo must not silently fall back to a default.
func loadConfig(path string) (Config, error) {
	cfg := defaultConfig()
	if path == "" {
		return cfg, nil
	}
	md, err := toml.DecodeFile(path, &cfg)
	if err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if undec := md.Undecoded(); len(undec) > 0 {
		keys := make([]string, len(undec))
		for i, k := range undec {
			keys[i] = k.String()
		}
		return cfg, fmt.Errorf("config %s: unknown keys: %s", path, strings.Join(keys, ", "))
	}
	return cfg, nil
}

// dsn is the database to use: the configured one, or the embedded SQLite file.
func (c Config) dsn() string {
	if c.DB != "" {
		return c.DB
	}
	return "sqlite:" + filepath.Join(c.workDir(), "smsrouter.db")
}

func (c Config) workDir() string {
	if c.WorkDir != "" {
		return c.WorkDir
	}
	return filepath.Join(c.Spool, "smsrouter")
}

func (c Config) location() (*time.Location, error) {
	if c.Timezone == "" || c.Timezone == "Local" {
		return time.Local, nil
	}
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return nil, fmt.Errorf("timezone %q: %w", c.Timezone, err)
	}
	return loc, nil
}

func (c Config) routerConfig() (router.Config, error) {
	loc, err := c.location()
	if err != nil {
		return router.Config{}, err
	}
	if err := c.checkSpool(); err != nil {
		return router.Config{}, err
	}
	rc := c.routerSettings(loc)
	if err := c.linkSettings(&rc); err != nil {
		return router.Config{}, err
	}
	if errs := c.reachSettings(&rc, loc); len(errs) > 0 {
		return router.Config{}, errs[0]
	}
	return rc, nil
}

// linkSettings sets the router's numbering plan, routes and inbound numbers
// from [numbers], [[link]] and [[route]] (what runs a link, with its secrets,
// is checked by prepare).
func (c Config) linkSettings(rc *router.Config) error {
	plan, err := c.Numbers.plan()
	if err != nil {
		return err
	}
	specs, err := c.linkSpecs(plan, false)
	if err != nil {
		return err
	}
	names := map[string]bool{}
	for _, s := range specs {
		names[s.Name] = true
	}
	routes, err := c.routes(plan, names)
	if err != nil {
		return err
	}
	rc.Plan, rc.Routes, rc.Inbound = plan, routes, inboundMap(plan, specs)
	return nil
}

// checkSpool says whether the spool is set and is a folder.
func (c Config) checkSpool() error {
	if c.Spool == "" {
		return errors.New("no spool folder: set spool in the config or pass --spool")
	}
	if st, err := os.Stat(c.Spool); err != nil || !st.IsDir() {
		return fmt.Errorf("spool %s is not a folder (is Asterisk installed? pass --spool)", c.Spool)
	}
	return nil
}
