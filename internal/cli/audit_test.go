package cli

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/central/audit"
	"github.com/vigil-perimeter/vigil/internal/kv"
)

// stoppedCentral makes a central in a new directory (its data_dir,
// central.yaml) whose audit log holds three entries, and stops it.
func stoppedCentral(t *testing.T) (dir, data, conf string) {
	t.Helper()
	dir = t.TempDir()
	data = filepath.Join(dir, "data")
	conf = filepath.Join(dir, "central.yaml")
	if err := os.WriteFile(conf, []byte("listen: 127.0.0.1:0\ndata_dir: "+data+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := central.LoadConfig(conf)
	if err != nil {
		t.Fatal(err)
	}
	s, err := central.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"a-1", "a-2", "a-3"} {
		if _, err := s.AuditLog().Append(context.Background(), audit.Entry{Actor: audit.Actor{User: "ann", Role: "guard"}, Action: audit.ActionView, Target: target}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	return dir, data, conf
}

// `vigil central audit verify` passes on central's log and fails naming
// the seq of an entry edited in the store.
func TestCentralAuditVerifyCommand(t *testing.T) {
	_, data, conf := stoppedCentral(t)

	var out, errOut bytes.Buffer
	if code := Main([]string{"central", "audit", "verify", "--config", conf}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "intact: 3 entries") {
		t.Fatalf("verify: %d %q %q", code, out.String(), errOut.String())
	}

	db, err := kv.Open(kv.Options{Dir: data, SyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	key := binary.BigEndian.AppendUint64([]byte("audit/e/"), 2)
	err = db.Update(func(txn *badger.Txn) error {
		it, err := txn.Get(key)
		if err != nil {
			return err
		}
		v, _ := it.ValueCopy(nil)
		return txn.Set(key, bytes.Replace(v, []byte(`"a-2"`), []byte(`"a-9"`), 1))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errOut.Reset()
	if code := Main([]string{"central", "audit", "verify", "--config", conf}, &out, &errOut); code != 1 || !strings.Contains(out.String(), "BROKEN at seq 2: edited") {
		t.Fatalf("verify after an edit: %d %q %q", code, out.String(), errOut.String())
	}
	if code := Main([]string{"central", "audit"}, &out, &errOut); code == 0 {
		t.Fatal("vigil central audit without verify succeeded")
	}
}
