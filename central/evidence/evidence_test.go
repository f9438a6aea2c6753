package evidence

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"image/jpeg"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var ctx = context.Background()

// fixture is one bundle built from two cameras (H.264 and H.265) recorded
// into a real clip store, shared by the tests that only read it.
type fixture struct {
	dir    string
	bundle string
	key    ed25519.PrivateKey
	man    *Manifest
	cams   []exported
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  error
)

func getFixture(t *testing.T) *fixture {
	t.Helper()
	fixOnce.Do(func() {
		dir, err := os.MkdirTemp("", "evidence-test-")
		if err != nil {
			fixErr = err
			return
		}
		f := &fixture{dir: dir}
		f.key, err = GenerateKey(filepath.Join(dir, "central-evidence.key"))
		if err != nil {
			fixErr = err
			return
		}
		f.cams = []exported{
			recordAndExport(t, h264Clip(t), "north-gate", 3*time.Second, 11*time.Second),
			recordAndExport(t, h265Clip(t), "north-wall/east", 5*time.Second, 9*time.Second),
		}
		// The clip store's temp dirs belong to the test that made them:
		// keep copies (of the MP4 and its contact sheet).
		for i := range f.cams {
			for _, p := range []*string{&f.cams[i].path, &f.cams[i].sheet} {
				b, err := os.ReadFile(*p)
				if err != nil {
					fixErr = err
					return
				}
				*p = filepath.Join(dir, filepath.Base(*p))
				if err := os.WriteFile(*p, b, 0o644); err != nil {
					fixErr = err
					return
				}
			}
		}
		req := testRequest(t, f.key, testCamera(f.cams[0], "north-gate", "North gate, inside"),
			testCamera(f.cams[1], "north-wall/east", "North wall east"))
		f.bundle = filepath.Join(dir, "bundle.zip")
		out, err := os.Create(f.bundle)
		if err != nil {
			fixErr = err
			return
		}
		f.man, fixErr = Build(ctx, out, req)
		if err := out.Close(); fixErr == nil {
			fixErr = err
		}
		fix = f
	})
	if fixErr != nil || fix == nil {
		t.Fatalf("building the shared bundle failed: %v", fixErr)
	}
	return fix
}

func pub(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

func TestBuildAndVerify(t *testing.T) {
	f := getFixture(t)
	res, err := VerifyFile(ctx, f.bundle, pub(f.key))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	m := res.Manifest
	if m.CaseNumber != "2026-XA-0117" || m.Requester.Role != "police_liaison" || len(m.Cameras) != 2 ||
		m.Custody.Entries != 3 || m.Custody.FirstSeq != 2 || res.Files != 8 {
		t.Fatalf("manifest: %+v, files %d", m, res.Files)
	}
	t.Log(Summary(res))

	zr, err := zip.OpenReader(f.bundle)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var names []string
	for _, zf := range zr.File {
		names = append(names, zf.Name)
	}
	want := "video/north-gate.mp4 video/north-wall_east.mp4 contact/north-gate.jpg contact/north-wall_east.jpg custody.jsonl README.txt manifest.json manifest.sig"
	if strings.Join(names, " ") != want {
		t.Fatalf("members %v", names)
	}

	for i, c := range m.Cameras {
		src := f.cams[i]
		// The video is the edge's file, byte for byte.
		got := member(t, zr, c.Video)
		orig, _ := os.ReadFile(src.path)
		if !bytes.Equal(got, orig) {
			t.Fatalf("%s is not the original MP4", c.Video)
		}
		if !c.Actual.Start.Equal(src.info.Start) || !c.Actual.End.Equal(src.info.End) || c.Frames != src.info.Frames {
			t.Fatalf("%s: actual %v..%v frames %d, the export said %+v", c.CameraID, c.Actual.Start, c.Actual.End, c.Frames, src.info)
		}
		if c.Actual.Start.After(c.Requested.Start) {
			t.Fatalf("%s: the export starts after the requested start", c.CameraID)
		}
		// ffprobe decodes every frame and agrees with the manifest.
		tmp := filepath.Join(t.TempDir(), "v.mp4")
		os.WriteFile(tmp, got, 0o644)
		p := ffprobe(t, tmp)
		frame := c.DurationSeconds / float64(c.Frames)
		if p.Codec != ffprobeCodec(c.Codec) || p.Width != c.Width || p.Height != c.Height || p.Frames != c.Frames ||
			math.Abs(p.Duration-c.DurationSeconds) > frame {
			t.Fatalf("%s: ffprobe %+v, manifest codec %s %dx%d %d frames %.3fs", c.Video, p, c.Codec, c.Width, c.Height, c.Frames, c.DurationSeconds)
		}
		t.Logf("%s: ffprobe %+v, manifest %.3fs", c.Video, p, c.DurationSeconds)

		sheet := member(t, zr, c.ContactSheet)
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(sheet))
		if err != nil || cfg.Width < 3*160 || cfg.Height < 2*100 {
			t.Fatalf("%s: %+v %v", c.ContactSheet, cfg, err)
		}
		if os.Getenv("VIGIL_KEEP_SHEETS") != "" {
			os.WriteFile(filepath.Join(os.Getenv("VIGIL_KEEP_SHEETS"), filepath.Base(c.ContactSheet)), sheet, 0o644)
		}
	}
	readme := string(member(t, zr, ReadmeName))
	for _, s := range []string{"如何验证", "How to verify", "VLC", "vigil evidence verify", m.SigningKeyFingerprint, m.CaseNumber} {
		if !strings.Contains(readme, s) {
			t.Errorf("README.txt lacks %q", s)
		}
	}
}

func member(t *testing.T, zr *zip.ReadCloser, name string) []byte {
	t.Helper()
	for _, f := range zr.File {
		if f.Name == name {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatalf("no member %s", name)
	return nil
}

// By hand, as README.txt tells the court: OpenSSL checks the signature
// with the exported PEM public key.
func TestOpenSSLVerifiesTheSignature(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl not installed (make deps installs it)")
	}
	f := getFixture(t)
	zr, err := zip.OpenReader(f.bundle)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	dir := t.TempDir()
	for _, n := range []string{ManifestName, SignatureName} {
		os.WriteFile(filepath.Join(dir, n), member(t, zr, n), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "evidence.pub"), PublicKeyPEM(pub(f.key)), 0o644)
	cmd := exec.Command("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "evidence.pub", "-rawin", "-in", ManifestName, "-sigfile", SignatureName)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Signature Verified Successfully") {
		t.Fatalf("openssl: %v: %s", err, out)
	}
}

func TestWrongKeyFails(t *testing.T) {
	f := getFixture(t)
	other, _, _ := ed25519.GenerateKey(nil)
	_, err := VerifyFile(ctx, f.bundle, other)
	wantFile(t, err, SignatureName)
}

func wantFile(t *testing.T, err error, file string) {
	t.Helper()
	var ve *VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("got %v, want a failure naming %s", err, file)
	}
	if file != "" && ve.File != file {
		t.Fatalf("got %q, want it to name %s", err, file)
	}
}

// Flipping one byte anywhere makes Verify fail: in a member's content it
// names that member; in the zip's own headers it names the structure.
// Every byte of the zip's structure is flipped, and 40 bytes spread
// over each member's content.
func TestEveryFlippedByteIsFound(t *testing.T) {
	f := getFixture(t)
	orig, err := os.ReadFile(f.bundle)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(orig), int64(len(orig)))
	if err != nil {
		t.Fatal(err)
	}
	owner := make([]string, len(orig)) // member whose content holds each byte
	for _, zf := range zr.File {
		off, _ := zf.DataOffset()
		for i := off; i < off+int64(zf.UncompressedSize64); i++ {
			owner[i] = zf.Name
		}
	}
	pk := pub(f.key)
	buf := make([]byte, len(orig))
	flips, named := 0, map[string]int{}
	for i := range orig {
		o := owner[i]
		if o != "" && i%max(1, int(f.sizeOf(o))/40) != 0 {
			continue
		}
		copy(buf, orig)
		buf[i] ^= 0x01
		_, err := Verify(ctx, bytes.NewReader(buf), int64(len(buf)), pk)
		var ve *VerifyError
		if !errors.As(err, &ve) {
			t.Fatalf("byte %d (%s) flipped: got %v", i, orNone(o), err)
		}
		if o != "" && ve.File != o {
			t.Fatalf("byte %d of %s flipped: the error names %q: %v", i, o, ve.File, err)
		}
		flips++
		named[ve.File]++
	}
	t.Logf("%d single-byte flips, all found (%d in manifest.json, %d named the zip structure)", flips, named[ManifestName], named[WhereZip])
	for _, zf := range zr.File {
		if named[zf.Name] == 0 {
			t.Errorf("no flip named %s", zf.Name)
		}
	}
}

func (f *fixture) sizeOf(name string) int64 {
	for _, e := range f.man.Files {
		if e.Name == name {
			return e.Size
		}
	}
	return 0
}

func orNone(s string) string {
	if s == "" {
		return "zip structure"
	}
	return s
}

// rezip rewrites the bundle through edit, which may drop, replace or add
// members (it gets each member's name and content, returns the new
// content or nil to drop it); extra members are appended.
func rezip(t *testing.T, src string, edit func(name string, b []byte) []byte, extra map[string][]byte) string {
	t.Helper()
	zr, err := zip.OpenReader(src)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out := filepath.Join(t.TempDir(), "edited.zip")
	fo, _ := os.Create(out)
	defer fo.Close()
	zw := zip.NewWriter(fo)
	var mod time.Time
	for _, zf := range zr.File {
		mod = zf.Modified
		rc, _ := zf.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		if b = edit(zf.Name, b); b == nil {
			continue
		}
		w, _ := zw.CreateHeader(memberHeader(zf.Name, zf.Modified))
		w.Write(b)
	}
	for n, b := range extra {
		w, _ := zw.CreateHeader(memberHeader(n, mod))
		w.Write(b)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

func keep(_ string, b []byte) []byte { return b }

func TestMembersAddedOrRemoved(t *testing.T) {
	f := getFixture(t)
	pk := pub(f.key)
	// The untouched rewrite is canonical and verifies.
	if _, err := VerifyFile(ctx, rezip(t, f.bundle, keep, nil), pk); err != nil {
		t.Fatalf("canonical rewrite: %v", err)
	}
	_, err := VerifyFile(ctx, rezip(t, f.bundle, keep, map[string][]byte{"video/extra.mp4": []byte("x")}), pk)
	wantFile(t, err, "video/extra.mp4")
	for _, drop := range []string{"contact/north-gate.jpg", CustodyName, ManifestName, SignatureName} {
		_, err = VerifyFile(ctx, rezip(t, f.bundle, func(n string, b []byte) []byte {
			if n == drop {
				return nil
			}
			return b
		}, nil), pk)
		wantFile(t, err, drop)
	}
}

// A manifest re-signed with the right key but inconsistent is refused,
// naming manifest.json; so is custody that was re-chained.
func TestResignedInconsistentManifest(t *testing.T) {
	f := getFixture(t)
	pk := pub(f.key)
	cases := map[string]func(m *Manifest){
		"actual range reversed": func(m *Manifest) {
			m.Cameras[0].Actual.Start, m.Cameras[0].Actual.End = m.Cameras[0].Actual.End, m.Cameras[0].Actual.Start
		},
		"actual far before requested": func(m *Manifest) { m.Cameras[0].Actual.Start = m.Cameras[0].Requested.Start.Add(-2 * time.Minute) },
		"duration wrong":              func(m *Manifest) { m.Cameras[1].DurationSeconds += 0.5 },
		"no case number":              func(m *Manifest) { m.CaseNumber = " " },
		"bad clock source":            func(m *Manifest) { m.Cameras[0].ClockSource = "guess" },
		"video after export":          func(m *Manifest) { m.ExportedAt = m.Cameras[0].Actual.End.Add(-time.Hour) },
		"another signing key":         func(m *Manifest) { m.SigningKey = "ed25519:AAAA" },
		"one camera twice at once": func(m *Manifest) {
			m.Cameras[1].EdgeID, m.Cameras[1].CameraID = m.Cameras[0].EdgeID, m.Cameras[0].CameraID
		},
	}
	for name, mut := range cases {
		t.Run(name, func(t *testing.T) {
			out := rezip(t, f.bundle, func(n string, b []byte) []byte {
				switch n {
				case ManifestName:
					var m Manifest
					json.Unmarshal(b, &m)
					mut(&m)
					b, _ = json.MarshalIndent(m, "", "  ")
					return append(b, '\n')
				case SignatureName:
					return nil
				}
				return b
			}, nil)
			// Sign the edited manifest and put the signature back in place.
			out = resign(t, out, f.key)
			_, err := VerifyFile(ctx, out, pk)
			wantFile(t, err, ManifestName)
			t.Log(err)
		})
	}
	// The wrong duration is also caught against the MP4 itself.
}

func resign(t *testing.T, path string, key ed25519.PrivateKey) string {
	t.Helper()
	var mj []byte
	zr, _ := zip.OpenReader(path)
	for _, zf := range zr.File {
		if zf.Name == ManifestName {
			rc, _ := zf.Open()
			mj, _ = io.ReadAll(rc)
			rc.Close()
		}
	}
	zr.Close()
	return rezip(t, path, keep, map[string][]byte{SignatureName: ed25519.Sign(key, mj)})
}

func TestBuildRefusesInconsistentRequests(t *testing.T) {
	f := getFixture(t)
	cam := testCamera(f.cams[0], "north-gate", "North gate")
	cases := map[string]func(r *Request){
		"actual range not the video's": func(r *Request) { r.Cameras[0].Actual.End = r.Cameras[0].Actual.End.Add(2 * time.Second) },
		"wrong codec":                  func(r *Request) { r.Cameras[0].Codec = "h265" },
		"wrong size":                   func(r *Request) { r.Cameras[0].Width = 1920 },
		"custody broken":               func(r *Request) { r.Custody = bytes.Replace(r.Custody, []byte("alert-1"), []byte("alert-2"), 1) },
		"no key":                       func(r *Request) { r.Key = nil },
		"no case":                      func(r *Request) { r.CaseNumber = "" },
		"missing video":                func(r *Request) { r.Cameras[0].VideoPath += ".gone" },
		"missing contact sheet":        func(r *Request) { r.Cameras[0].ContactSheetPath += ".gone" },
		"contact sheet not a JPEG":     func(r *Request) { r.Cameras[0].ContactSheetPath = r.Cameras[0].VideoPath },
		"requested range reversed":     func(r *Request) { r.Cameras[0].Requested.Start = r.Cameras[0].Requested.End.Add(time.Second) },
	}
	for name, mut := range cases {
		req := testRequest(t, f.key, cam)
		mut(&req)
		var out bytes.Buffer
		if _, err := Build(ctx, &out, req); err == nil {
			t.Errorf("%s: built", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	// A cancelled build stops.
	c, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Build(c, io.Discard, testRequest(t, f.key, cam)); err == nil {
		t.Error("a cancelled build finished")
	}
}

// A camera without a contact sheet (the edge made none) still makes a
// bundle that verifies: the manifest and README say why, and the sheet's
// member is simply not there. Sheets that are there are copied byte for
// byte from the edge's file.
func TestBuildWithoutContactSheet(t *testing.T) {
	f := getFixture(t)
	with := testCamera(f.cams[0], "north-gate", "North gate")
	without := testCamera(f.cams[1], "north-wall/east", "North wall east")
	without.ContactSheetPath, without.ContactSheetNote = "", "the edge made no contact sheet (bad_request: unknown method)"
	path := filepath.Join(t.TempDir(), "bundle.zip")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Build(ctx, out, testRequest(t, f.key, with, without))
	out.Close()
	if err != nil {
		t.Fatal(err)
	}
	if m.Cameras[0].ContactSheet != "contact/north-gate.jpg" || m.Cameras[1].ContactSheet != "" ||
		m.Cameras[1].ContactSheetNote != without.ContactSheetNote || m.Cameras[0].ContactSheetNote != "" {
		t.Fatalf("cameras %+v", m.Cameras)
	}
	res, err := VerifyFile(ctx, path, pub(f.key))
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 7 {
		t.Fatalf("%d files", res.Files)
	}
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	if !bytes.Equal(member(t, zr, "contact/north-gate.jpg"), mustRead(t, with.ContactSheetPath)) {
		t.Fatal("the contact sheet is not the edge's file")
	}
	if readme := string(member(t, zr, ReadmeName)); !strings.Contains(readme, "no contact sheet: "+without.ContactSheetNote) {
		t.Fatalf("README.txt does not say why there is no sheet:\n%s", readme)
	}
	// No note given: a default one.
	without.ContactSheetNote = ""
	m, err = Build(ctx, io.Discard, testRequest(t, f.key, without))
	if err != nil || m.Cameras[0].ContactSheetNote != NoContactSheet {
		t.Fatalf("%+v %v", m, err)
	}
}

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k", "central-evidence.key")
	k, created, err := LoadOrGenerateKey(path)
	if err != nil || !created {
		t.Fatal(created, err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", st.Mode())
	}
	k2, created, err := LoadOrGenerateKey(path)
	if err != nil || created || !k.Equal(k2) {
		t.Fatalf("reload: %v %v", created, err)
	}
	if _, err := GenerateKey(path); err == nil {
		t.Fatal("GenerateKey overwrote a key")
	}
	p := pub(k)
	for _, form := range [][]byte{PublicKeyPEM(p), []byte(FormatPublicKey(p) + "\n"), []byte(strings.TrimPrefix(FormatPublicKey(p), "ed25519:")), mustRead(t, path)} {
		got, err := ParsePublicKey(form)
		if err != nil || !got.Equal(p) {
			t.Fatalf("ParsePublicKey(%q) = %v", form, err)
		}
	}
	if _, err := ParsePublicKey([]byte("ed25519:AAAA")); err == nil {
		t.Fatal("short key accepted")
	}
	os.Chmod(path, 0o644)
	if _, err := LoadKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable key loaded: %v", err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
