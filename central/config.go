package central

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-perimeter/vigil/central/notify"
	"github.com/vigil-perimeter/vigil/internal/config"
)

// Config is central's YAML configuration (central.yaml).
type Config struct {
	// Listen is the console, REST API and /metrics address, plain HTTP: bind
	// it to loopback or the LAN, or put a TLS proxy in front (deploy/).
	Listen  string `yaml:"listen"`
	DataDir string `yaml:"data_dir"` // Badger directory: alerts, edges, enrolment tokens
	// Store is where alerts are kept: "badger" (the default) in DataDir,
	// or a PostgreSQL connection string (postgres://user@host/db) that
	// several centrals may share (ARCHITECTURE.md, "One machine or
	// many").
	Store string `yaml:"store,omitempty"`
	// ReplicaURL is where the other centrals on the same store reach this
	// one's console port (http://10.0.0.2:8080), to forward a request for
	// an edge connected here. Default: http:// and the address Listen
	// binds (the host name when that is 0.0.0.0).
	ReplicaURL string `yaml:"replica_url,omitempty"`
	// EdgeHub is where edges connect and enrol, always over TLS.
	EdgeHub EdgeHubConfig `yaml:"edge_hub,omitempty"`
	// AdminTokenSHA256 is the hex SHA-256 of the bearer token that may
	// create enrolment tokens and revoke edges, until users and roles
	// arrive. Without it those endpoints answer 403.
	AdminTokenSHA256 string `yaml:"admin_token_sha256,omitempty"`
	// MetricsTokenSHA256 is the hex SHA-256 of the token a monitoring
	// system sends (Authorization: Bearer) to scrape /metrics, and nothing
	// else; without it /metrics takes the admin token only.
	MetricsTokenSHA256 string `yaml:"metrics_token_sha256,omitempty"`
	// Users are console accounts declared here (bootstrap): at every start
	// central stores them with this role and password hash. More users are
	// added with `vigil central user add` or on the admin page. There is no
	// default account.
	Users []UserConfig `yaml:"users,omitempty"`
	// TrustedProxies are the reverse proxies (IP or CIDR, e.g. 127.0.0.1,
	// 10.0.0.0/8) in front of Listen whose X-Forwarded-For is believed:
	// for a request from one of them, the client is the right-most
	// X-Forwarded-For address that is not itself a trusted proxy. Login
	// limits and the audit log then see each browser's own address instead
	// of the proxy's. Default none: X-Forwarded-For is ignored, the client
	// is the connection's address (clientaddr.go).
	TrustedProxies []string `yaml:"trusted_proxies,omitempty"`
	// EvidenceKeyFile is central's Ed25519 key that signs evidence bundles
	// (mode 0600, made on first start); default data_dir/central-evidence.key.
	// Keep it backed up: bundles signed with it are checked with its public
	// half for years.
	EvidenceKeyFile string `yaml:"evidence_key_file,omitempty"`
	// AuditKeyFile is the key (32 random bytes, mode 0600, made on first
	// start) of the MACs on the audit log's entries. It must live outside
	// the store: default <data_dir>-audit.key, next to the Badger
	// directory (data_dir /var/lib/vigil/central: /var/lib/vigil/central-audit.key).
	// Back it up apart from the store: a log checked with another key is
	// reported forged.
	AuditKeyFile string `yaml:"audit_key_file,omitempty"`
	// AuditCheckpointInterval is how often central signs its audit log's
	// head with the evidence key and hands it to every connected edge
	// (default 5m; also whenever an edge connects).
	AuditCheckpointInterval config.Duration `yaml:"audit_checkpoint_interval,omitempty"`
	// Retrieval tunes how central fetches evidence from the edges: the
	// chunk size and the pauses of waiting and retrying workers.
	Retrieval RetrievalConfig `yaml:"retrieval,omitempty"`
	// RetrievalFaults is a test hook, never read from the file and never
	// set in production: the end-to-end tests corrupt, count and hold
	// fetched chunks with it (see RetrievalFaults).
	RetrievalFaults RetrievalFaults `yaml:"-"`
	// Township is the site hierarchy: township › village › zone ›
	// entrance, and through edges' site_id which edge watches which
	// entrance. Cameras and gates are named by their edges (devices.go);
	// cameras/gates under an entrance are deprecated fallbacks.
	Township *TownshipConfig `yaml:"township,omitempty"`
	// Edges are edges configured with a bearer token instead of enrolment
	// (deprecated: enrolled edges prove a key and pin central's certificate).
	Edges []EdgeConfig `yaml:"edges,omitempty"`
	// Alarms ranks alerts (priority 1 = most urgent, by kind, per site)
	// and sets when a red alert nobody acknowledged escalates:
	//
	//	alarms:
	//	  priorities: {"gate.sos": 1, "perimeter.": 2, "motion": 5}
	//	  sites: {"north/gate-3": {priorities: {"gate.held": 2}}}
	//	  escalate_after: 60s   # default; 0s: never
	//
	// Keys are kinds or prefixes ending in "." or "*"; without a rule the
	// default order applies: 1 SOS, duress, fire, smoke, gas; 2 forced,
	// intrusion, perimeter.*; 3 tamper; 4 held open, water leak; 5 motion;
	// 6 offline, silent, system.*, battery; 7 anything else (AlarmsConfig,
	// defaultPriority in alarms.go).
	Alarms AlarmsConfig `yaml:"alarms,omitempty"`
	// Notify sends every stored change of an alert (new, update, workflow
	// step, escalation) to an MQTT broker and to webhooks; see
	// central/notify/README.md. Absent: nothing is sent.
	Notify *notify.Config `yaml:"notify,omitempty"`
}

// EdgeHubConfig is the TLS listener for edges.
type EdgeHubConfig struct {
	Listen string `yaml:"listen,omitempty"` // e.g. 0.0.0.0:8443; empty: no edge can connect (the console port refuses edges)
	// CertFile and KeyFile are a real certificate (e.g. Let's Encrypt). Edges
	// pin its public key at enrolment, so renew it with the same key
	// (certbot --reuse-key); see deploy/README.md.
	CertFile string `yaml:"cert_file,omitempty"`
	KeyFile  string `yaml:"key_file,omitempty"`
	// SelfSignedHosts, used when no certificate is given, are the names and
	// IPs of a self-signed certificate central makes once and keeps in
	// data_dir/tls/ (the demo uses this).
	SelfSignedHosts []string `yaml:"self_signed_hosts,omitempty"`
	// TokenTTL is the default lifetime of an enrolment token (default 1h).
	TokenTTL config.Duration `yaml:"token_ttl,omitempty"`
}

// EdgeConfig is one edge authenticated by a bearer token.
type EdgeConfig struct {
	ID     string `yaml:"id"`
	SiteID string `yaml:"site_id"`
	// TokenSHA256 is the hex SHA-256 of the edge's bearer token; the token
	// itself is never stored at central, so a copied config cannot impersonate
	// an edge.
	TokenSHA256 string `yaml:"token_sha256"`
}

// Token lifetimes.
const (
	defaultTokenTTL = time.Hour
	maxTokenTTL     = 7 * 24 * time.Hour
)

// LoadConfig reads and validates central's config file; the error names the
// file, line and field of every problem.
func LoadConfig(path string) (Config, error) {
	var c Config
	if err := config.Load(path, &c); err != nil {
		return Config{}, err
	}
	return c, nil
}

// HashToken returns the hex SHA-256 of a bearer token, the form kept in
// EdgeConfig.TokenSHA256 and Config.AdminTokenSHA256.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Validate reports every problem with the config, naming fields as written in
// the file (e.g. "edges[1].token_sha256").
func (c *Config) Validate() []config.FieldError {
	var out []config.FieldError
	add := func(field, format string, args ...any) {
		out = append(out, config.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if c.Listen == "" {
		add("listen", "is required (host:port, e.g. 127.0.0.1:8080)")
	} else if err := checkHostPort(c.Listen); err != nil {
		add("listen", "%v", err)
	}
	if c.DataDir == "" {
		add("data_dir", "is required")
	}
	if err := checkStore(c.Store); err != nil {
		add("store", "%v", err)
	}
	if c.ReplicaURL != "" {
		if u, err := url.Parse(c.ReplicaURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			add("replica_url", "must be http(s)://host:port of this central's console port, without a path")
		} else if !postgresStore(c.Store) {
			add("replica_url", "is only for several centrals on one PostgreSQL store (store: postgres://…)")
		}
	}
	c.validateEdgeHub(add)
	if d := c.AuditCheckpointInterval.D(); d != 0 && (d < time.Second || d > 24*time.Hour) {
		add("audit_checkpoint_interval", "must be between 1s and 24h (default 5m)")
	}
	c.Retrieval.validate(add)
	if c.AuditKeyFile != "" && c.DataDir != "" && pathInside(c.AuditKeyFile, c.DataDir) {
		add("audit_key_file", "must be outside data_dir (the store it protects)")
	}
	if c.AdminTokenSHA256 != "" {
		if sum, err := hex.DecodeString(c.AdminTokenSHA256); err != nil || len(sum) != sha256.Size {
			add("admin_token_sha256", "must be 64 hex characters (the SHA-256 of the admin token, not the token)")
		}
	}
	if c.MetricsTokenSHA256 != "" {
		if sum, err := hex.DecodeString(c.MetricsTokenSHA256); err != nil || len(sum) != sha256.Size {
			add("metrics_token_sha256", "must be 64 hex characters (the SHA-256 of the scrape token, not the token)")
		}
	}
	for i, p := range c.TrustedProxies {
		if _, err := trustedProxy(p); err != nil {
			add("trusted_proxies["+strconv.Itoa(i)+"]", "%v", err)
		}
	}
	names := map[string]int{}
	for i, u := range c.Users {
		f := func(name string) string { return "users[" + strconv.Itoa(i) + "]." + name }
		if err := ValidateUserName(u.Name); err != nil {
			add(f("name"), "%v", err)
		} else if prev, dup := names[u.Name]; dup {
			add(f("name"), "%q is already used by users[%d]", u.Name, prev)
		} else {
			names[u.Name] = i
		}
		if !ValidRole(u.Role) {
			add(f("role"), "must be one of %s", strings.Join(Roles, ", "))
		}
		if !ValidPasswordHash(u.PasswordHash) {
			add(f("password_argon2id"), "must be an argon2id hash ($argon2id$v=19$...; make one with `vigil central user hash`)")
		}
	}
	var tree *siteTree
	if c.Township != nil {
		var fes []config.FieldError
		tree, fes = buildSiteTree(c.Township)
		for _, fe := range fes {
			out = append(out, c.Township.deviceField(fe))
		}
	}
	c.validateEdges(add, tree)
	c.Alarms.validate(add)
	if c.Notify != nil {
		out = append(out, c.Notify.FieldErrors("notify")...)
	}
	return out
}

func (c *Config) validateEdgeHub(add func(field, format string, args ...any)) {
	h := c.EdgeHub
	if h.Listen == "" {
		if h.CertFile != "" || h.KeyFile != "" || len(h.SelfSignedHosts) > 0 {
			add("edge_hub.listen", "is required when a certificate is configured")
		}
		return
	}
	if err := checkHostPort(h.Listen); err != nil {
		add("edge_hub.listen", "%v", err)
	}
	switch {
	case (h.CertFile == "") != (h.KeyFile == ""):
		add("edge_hub.key_file", "cert_file and key_file go together")
	case h.CertFile == "" && len(h.SelfSignedHosts) == 0:
		add("edge_hub.cert_file", "give cert_file and key_file, or self_signed_hosts for a generated certificate")
	case h.CertFile != "" && len(h.SelfSignedHosts) > 0:
		add("edge_hub.self_signed_hosts", "set either a certificate or self_signed_hosts, not both")
	}
	if d := h.TokenTTL.D(); d != 0 && (d < time.Minute || d > maxTokenTTL) {
		add("edge_hub.token_ttl", "must be between 1m and %v", maxTokenTTL)
	}
}

func (c *Config) validateEdges(add func(field, format string, args ...any), tree *siteTree) {
	ids := map[string]int{}
	tokens := map[string]int{}
	for i, e := range c.Edges {
		f := func(name string) string { return "edges[" + strconv.Itoa(i) + "]." + name }
		switch prev, dup := ids[e.ID]; {
		case e.ID == "":
			add(f("id"), "is required")
		case dup:
			add(f("id"), "%q is already used by edges[%d]", e.ID, prev)
		default:
			ids[e.ID] = i
		}
		if tree != nil && e.SiteID != "" && !tree.isEntrance(e.SiteID) {
			add(f("site_id"), "%q is not an entrance of the township (want township/village/zone/entrance)", e.SiteID)
		}
		sum, err := hex.DecodeString(e.TokenSHA256)
		switch {
		case e.TokenSHA256 == "":
			add(f("token_sha256"), "is required (hex SHA-256 of the edge's token)")
		case err != nil || len(sum) != sha256.Size:
			add(f("token_sha256"), "must be 64 hex characters (the SHA-256 of the token, not the token)")
		default:
			// Two edges sharing a token could not be told apart at login.
			key := string(sum)
			if prev, dup := tokens[key]; dup {
				add(f("token_sha256"), "is the same as edges[%d].token_sha256; every edge needs its own token", prev)
			} else {
				tokens[key] = i
			}
		}
	}
}

var devicePath = regexp.MustCompile(`^township\.villages\[(\d+)\]\.zones\[(\d+)\]\.entrances\[(\d+)\]\.devices\[(\d+)\]$`)

// deviceField names a duplicate-device problem by the key the file uses:
// buildSiteTree counts an entrance's cameras and gates as one list
// ("devices[n]"), which central.yaml does not have.
func (t *TownshipConfig) deviceField(fe config.FieldError) config.FieldError {
	m := devicePath.FindStringSubmatch(fe.Field)
	if m == nil {
		return fe
	}
	n := make([]int, 4)
	for i := range n {
		n[i], _ = strconv.Atoi(m[i+1])
	}
	if n[0] >= len(t.Villages) || n[1] >= len(t.Villages[n[0]].Zones) || n[2] >= len(t.Villages[n[0]].Zones[n[1]].Entrances) {
		return fe
	}
	e := t.Villages[n[0]].Zones[n[1]].Entrances[n[2]]
	list, i := "cameras", n[3]
	if i >= len(e.Cameras) {
		list, i = "gates", i-len(e.Cameras)
	}
	prefix := strings.TrimSuffix(fe.Field, m[0][strings.LastIndex(m[0], ".devices["):])
	var d DeviceConfig
	if list == "cameras" {
		d = e.Cameras[i]
	} else if i < len(e.Gates) {
		d = e.Gates[i]
	}
	msg := fmt.Sprintf("%q is used twice in this entrance (camera and gate ids must be unique per entrance)", d.ID)
	if d.ID == "" {
		msg = "is required"
	}
	return config.FieldError{Field: fmt.Sprintf("%s.%s[%d].id", prefix, list, i), Msg: msg}
}

func checkHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number 0..65535", port)
	}
	return nil
}

// validationError joins field errors for callers that build a Config in code
// rather than loading a file.
func validationError(fes []config.FieldError) error {
	errs := make([]error, len(fes))
	for i, fe := range fes {
		errs[i] = fe
	}
	return fmt.Errorf("central: invalid config: %w", errors.Join(errs...))
}

// postgresStore reports whether store names a PostgreSQL database.
func postgresStore(store string) bool {
	return strings.HasPrefix(store, "postgres://") || strings.HasPrefix(store, "postgresql://")
}

// checkStore checks the store setting without connecting.
func checkStore(store string) error {
	switch {
	case store == "" || store == "badger":
		return nil
	case postgresStore(store):
		if _, err := pgxpool.ParseConfig(store); err != nil {
			return fmt.Errorf("not a PostgreSQL connection string: %v", redactURL(err.Error(), store))
		}
		return nil
	}
	return errors.New(`must be "badger" or a PostgreSQL connection string (postgres://user@host:5432/vigil)`)
}

// redactURL removes store's password from msg (an error quoting it).
func redactURL(msg, store string) string {
	if u, err := url.Parse(store); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return msg
}
