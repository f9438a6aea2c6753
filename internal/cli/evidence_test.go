package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/central/audit"
	"github.com/vigil-perimeter/vigil/central/evidence"
	"github.com/vigil-perimeter/vigil/internal/footage"
)

// `vigil evidence pubkey` and `vigil evidence verify` on a bundle of a real
// clip: exit 0 with a summary, exit 1 naming the file after one byte of it
// changed, exit 1 with another key.
func TestEvidenceCommands(t *testing.T) {
	ctx := context.Background()
	clip, err := footage.DefaultBursts().Make(ctx, footage.Cache{Dir: footage.DefaultDir()})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "central-evidence.key")
	run := func(args ...string) (int, string, string) {
		var so, se bytes.Buffer
		code := Main(args, &so, &se)
		return code, so.String(), se.String()
	}
	code, out, errs := run("evidence", "pubkey", "--key-file", keyFile, "--create")
	if code != 0 || !strings.Contains(out, "BEGIN PUBLIC KEY") || !strings.Contains(out, "ed25519:") || !strings.Contains(errs, "created") {
		t.Fatalf("pubkey: %d %s %s", code, out, errs)
	}
	pubFile := filepath.Join(dir, "evidence.pub")
	os.WriteFile(pubFile, []byte(out), 0o644) // PEM first: ParsePublicKey reads the PEM block
	if code, out2, _ := run("evidence", "pubkey", "--key-file", keyFile); code != 0 || out2 != out {
		t.Fatalf("pubkey again: %d %q", code, out2)
	}

	f, _ := os.Open(clip)
	st, _ := f.Stat()
	info, err := evidence.ProbeMP4(f, st.Size())
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	log, err := audit.OpenDir(filepath.Join(dir, "audit"), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	log.Append(ctx, audit.Entry{Actor: audit.Actor{User: "li.wei", Role: "police_liaison"}, Action: audit.ActionExport, Target: "b1"})
	var custody bytes.Buffer
	if _, err := log.Export(ctx, &custody, 1, 0); err != nil {
		t.Fatal(err)
	}
	log.Close()
	key, err := evidence.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	bundle := filepath.Join(dir, "bundle.zip")
	bf, _ := os.Create(bundle)
	_, err = evidence.Build(ctx, bf, evidence.Request{CaseNumber: "2026-XA-0117", Requester: audit.Actor{User: "li.wei", Role: "police_liaison"},
		Reason: "test", ExportedAt: start.Add(time.Hour), Software: "vigil " + Version, Key: key, Custody: custody.Bytes(),
		Cameras: []evidence.Camera{{CameraID: "north-gate", CameraName: "North gate", SiteName: "Lotus", EntranceName: "North",
			Requested: evidence.Range{Start: start, End: start.Add(info.Duration)}, Actual: evidence.Range{Start: start, End: start.Add(info.Duration)},
			ClockSource: evidence.ClockRTCP, VideoPath: clip}}})
	bf.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs = run("evidence", "verify", bundle, "--key", pubFile)
	if code != 0 || !strings.Contains(out, "OK: bundle") || !strings.Contains(out, "2026-XA-0117") {
		t.Fatalf("verify: %d\n%s\n%s", code, out, errs)
	}
	t.Logf("verify:\n%s", out)

	b, _ := os.ReadFile(bundle)
	i := bytes.Index(b, []byte("mdat")) + 1000
	b[i] ^= 1
	bad := filepath.Join(dir, "bad.zip")
	os.WriteFile(bad, b, 0o644)
	code, _, errs = run("evidence", "verify", "--key", pubFile, bad)
	if code != 1 || !strings.Contains(errs, "FAILED: video/north-gate.mp4") {
		t.Fatalf("tampered: %d %s", code, errs)
	}
	t.Logf("tampered: %s", errs)

	otherKey := filepath.Join(dir, "other.key")
	run("evidence", "pubkey", "--key-file", otherKey, "--create")
	code, other, _ := run("evidence", "pubkey", "--key-file", otherKey)
	os.WriteFile(pubFile, []byte(strings.Split(other, "\n")[len(strings.Split(other, "\n"))-3]), 0o644) // the ed25519: line
	code, _, errs = run("evidence", "verify", bundle, "--key", pubFile)
	if code != 1 || !strings.Contains(errs, "manifest.sig") {
		t.Fatalf("other key: %d %s", code, errs)
	}
	if code, _, _ := run("evidence", "verify", bundle); code == 0 {
		t.Fatal("verify without --key succeeded")
	}
}
