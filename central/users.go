package central

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/crypto/argon2"
)

// Roles. What each may do is the route policy in auth.go.
const (
	RoleGuard      = "guard"          // watches alerts, acts on them
	RoleSupervisor = "supervisor"     // a guard's lead: the same actions, for now
	RolePolice     = "police_liaison" // reads alerts, snapshots and clips; no workflow
	RoleInstaller  = "installer"      // fleet and edges, enrolment tokens
	RoleAdmin      = "admin"          // everything, including users and edges
)

// Roles lists every role, in the order the console and CLI show them.
var Roles = []string{RoleGuard, RoleSupervisor, RolePolice, RoleInstaller, RoleAdmin}

// ValidRole reports whether r is one of Roles.
func ValidRole(r string) bool { return slices.Contains(Roles, r) }

// prefixUser keys users in central's Badger database.
const prefixUser = "us/" // us/<name> → User JSON (with the password hash)

// Password rules and hashing cost. Argon2id as RFC 9106 and OWASP advise
// for a memory-constrained server: 19 MiB, 2 passes, 1 lane (~30 ms here).
const (
	minPasswordLen = 10
	maxPasswordLen = 256
)

// PasswordParams are argon2id's cost parameters; the hash string carries
// them, so a hash made with other parameters still verifies.
type PasswordParams struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// DefaultPasswordParams are used for every new hash.
var DefaultPasswordParams = PasswordParams{Memory: 19 * 1024, Time: 2, Threads: 1}

var userNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// User is one console account. Hash is the argon2id PHC string
// ($argon2id$v=19$m=…,t=…,p=…$salt$key); the API never shows it.
type User struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Hash      string    `json:"hash,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
	// FromConfig marks users declared in central.yaml: the file decides
	// their role and password at every start.
	FromConfig bool `json:"from_config,omitempty"`
}

// Public is the user without its hash, for the API.
func (u User) Public() User { u.Hash = ""; return u }

// UserConfig is a user declared in central.yaml (bootstrap): name, role
// and the argon2id hash of the password (`vigil central user hash`).
type UserConfig struct {
	Name         string `yaml:"name"`
	Role         string `yaml:"role"`
	PasswordHash string `yaml:"password_argon2id"`
}

// Errors of the user store.
var (
	ErrUserExists  = errors.New("central: a user with this name exists")
	ErrUserUnknown = errors.New("central: no such user")
)

// ValidateUserName checks a user name: 1-63 lower-case letters, digits, '.', '_' or '-'.
func ValidateUserName(name string) error {
	if !userNamePattern.MatchString(name) {
		return errors.New("user name must be 1-63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	return nil
}

// ValidatePassword checks a new password's length.
func ValidatePassword(pw string) error {
	if n := len([]rune(pw)); n < minPasswordLen || len(pw) > maxPasswordLen {
		return fmt.Errorf("password must be %d to %d characters", minPasswordLen, maxPasswordLen)
	}
	return nil
}

// HashPassword returns the argon2id PHC string of pw with a fresh salt.
func HashPassword(pw string) string { return hashPasswordWith(pw, DefaultPasswordParams) }

func hashPasswordWith(pw string, p PasswordParams) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, 32)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// parseHash splits a PHC string; ok is false for anything else.
func parseHash(h string) (p PasswordParams, salt, key []byte, ok bool) {
	parts := strings.Split(h, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return p, nil, nil, false
	}
	var threads uint32
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &threads); err != nil ||
		p.Memory < 8 || p.Memory > 1<<22 || p.Time < 1 || p.Time > 16 || threads < 1 || threads > 16 {
		return p, nil, nil, false
	}
	p.Threads = uint8(threads)
	var err1, err2 error
	salt, err1 = base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 = base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, false
	}
	return p, salt, key, true
}

// ValidPasswordHash reports whether h is an argon2id hash this code verifies.
func ValidPasswordHash(h string) bool { _, _, _, ok := parseHash(h); return ok }

// checkPassword compares pw with the PHC hash in constant time.
func checkPassword(hash, pw string) bool {
	p, salt, key, ok := parseHash(hash)
	if !ok {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1
}

// dummyHash is checked against when the user does not exist, so that
// answering "wrong user" takes as long as "wrong password".
var dummyHash = sync.OnceValue(func() string { return HashPassword("no such user, no such password") })

// users is the account store: Badger keeps them, a map serves reads.
type users struct {
	book userBook
	mu   sync.Mutex
	m    map[string]User
}

// userBook is where users are kept: central's Badger database
// (badgerUsers), or PostgreSQL shared by replicas (pgauth.go).
type userBook interface {
	loadUsers(f func(User)) error
	putUser(User) error
	deleteUser(name string) error
}

// badgerUsers keeps users in central's Badger database.
type badgerUsers struct{ db *badger.DB }

func (b badgerUsers) loadUsers(f func(User)) error {
	return b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixUser), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var x User
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &x) }); err != nil {
				return fmt.Errorf("user record %s: %w", it.Item().Key(), err)
			}
			f(x)
		}
		return nil
	})
}

func (b badgerUsers) putUser(x User) error {
	v, _ := json.Marshal(x)
	return b.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(prefixUser+x.Name), v) })
}

func (b badgerUsers) deleteUser(name string) error {
	return b.db.Update(func(txn *badger.Txn) error { return txn.Delete([]byte(prefixUser + name)) })
}

// openUsers loads the users and applies the config's bootstrap users.
func openUsers(book userBook, boot []UserConfig) (*users, error) {
	u := &users{book: book, m: map[string]User{}}
	if err := book.loadUsers(func(x User) { u.m[x.Name] = x }); err != nil {
		return nil, fmt.Errorf("central: reading users: %w", err)
	}
	for _, c := range boot {
		x, ok := u.m[c.Name]
		if ok && x.FromConfig && x.Role == c.Role && x.Hash == c.PasswordHash {
			continue
		}
		if !ok {
			x = User{Name: c.Name, CreatedAt: time.Now().UTC(), CreatedBy: "central.yaml"}
		}
		x.Role, x.Hash, x.FromConfig = c.Role, c.PasswordHash, true
		if err := u.put(x); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// put stores x.
func (u *users) put(x User) error {
	if err := u.book.putUser(x); err != nil {
		return fmt.Errorf("central: storing user %s: %w", x.Name, err)
	}
	u.mu.Lock()
	u.m[x.Name] = x
	u.mu.Unlock()
	return nil
}

// reloaded replaces what is known of one user by what another replica
// stored (found false: deleted), and reports whether a user known here
// changed role or password, or is gone: its sessions here end. A user
// new here has no sessions here to end (one is adopted only with its
// user, sessions.valid).
func (u *users) reloaded(name string, x User, found bool) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	old, had := u.m[name]
	if !found {
		delete(u.m, name)
		return had
	}
	u.m[name] = x
	return had && (old.Role != x.Role || old.Hash != x.Hash)
}

func (u *users) get(name string) (User, bool) {
	u.mu.Lock()
	x, ok := u.m[name]
	u.mu.Unlock()
	if ok {
		return x, true
	}
	// Added on another replica a moment ago (its notice is on its way)?
	shared, isShared := u.book.(sharedUserBook)
	if !isShared {
		return x, false
	}
	x, found, err := shared.user(name)
	if err != nil || !found {
		return User{}, false
	}
	u.reloaded(name, x, true)
	return x, true
}

// sharedUserBook is a userBook other replicas write too: a user unknown
// here is looked up before being refused.
type sharedUserBook interface {
	userBook
	user(name string) (User, bool, error)
}

// list returns every user without hashes, sorted by name.
func (u *users) list() []User {
	u.mu.Lock()
	out := make([]User, 0, len(u.m))
	for _, x := range u.m {
		out = append(out, x.Public())
	}
	u.mu.Unlock()
	slices.SortFunc(out, func(a, b User) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// add creates a user; ErrUserExists if the name is taken.
func (u *users) add(name, role, hash, by string, replace bool) (User, error) {
	if err := ValidateUserName(name); err != nil {
		return User{}, err
	}
	if !ValidRole(role) {
		return User{}, fmt.Errorf("role must be one of %s", strings.Join(Roles, ", "))
	}
	if !ValidPasswordHash(hash) {
		return User{}, errors.New("password hash must be argon2id")
	}
	old, exists := u.get(name)
	if exists && !replace {
		return User{}, ErrUserExists
	}
	x := User{Name: name, Role: role, Hash: hash, CreatedAt: time.Now().UTC(), CreatedBy: by}
	if exists {
		x.CreatedAt = old.CreatedAt
	}
	return x, u.put(x)
}

func (u *users) remove(name string) error {
	if _, ok := u.get(name); !ok {
		return ErrUserUnknown
	}
	if err := u.book.deleteUser(name); err != nil {
		return fmt.Errorf("central: deleting user %s: %w", name, err)
	}
	u.mu.Lock()
	delete(u.m, name)
	u.mu.Unlock()
	return nil
}

// authenticate checks name and password; the unknown-user path costs the
// same hash as a wrong password.
func (u *users) authenticate(name, pw string) (User, bool) {
	x, ok := u.get(name)
	if !ok {
		checkPassword(dummyHash(), pw)
		return User{}, false
	}
	if !checkPassword(x.Hash, pw) {
		return User{}, false
	}
	return x, true
}

// AddUser creates (or with replace, overwrites) a user in the store of a
// central that is not running, for `vigil central user add`.
func AddUser(dataDir, name, role, password, by string, replace bool) (User, error) {
	if err := ValidatePassword(password); err != nil {
		return User{}, err
	}
	store, err := OpenStore(dataDir, nil)
	if err != nil {
		return User{}, fmt.Errorf("%w (is central running? stop it, or use the admin page or POST /api/v1/users)", err)
	}
	defer store.Close()
	u, err := openUsers(badgerUsers{store.db}, nil)
	if err != nil {
		return User{}, err
	}
	x, err := u.add(name, role, HashPassword(password), by, replace)
	return x.Public(), err
}

// ListUsers lists the users in the store of a central that is not running.
func ListUsers(dataDir string) ([]User, error) {
	store, err := OpenStore(dataDir, nil)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	u, err := openUsers(badgerUsers{store.db}, nil)
	if err != nil {
		return nil, err
	}
	return u.list(), nil
}

// RandomPassword returns a password for generated accounts (the demo's).
func RandomPassword() string {
	var b [15]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:]) // 20 characters
}
