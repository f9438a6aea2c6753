package evidence

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"os"
	"strings"
	"time"

	"github.com/vigil-perimeter/vigil/central/audit"
)

// Where a VerifyError points when no single member is to blame.
const (
	WhereZip = "(zip structure)"
)

// VerifyError is a failed verification: the file (zip member) at fault
// and why.
type VerifyError struct {
	File   string
	Reason string
}

func (e *VerifyError) Error() string { return e.File + ": " + e.Reason }

func fail(file, f string, a ...any) error {
	return &VerifyError{File: file, Reason: fmt.Sprintf(f, a...)}
}

// Result describes a bundle that verified.
type Result struct {
	Manifest *Manifest
	Files    int   // members, manifest and signature included
	Bytes    int64 // of the members' content
}

// VerifyFile verifies the bundle at path with the public key pub.
func VerifyFile(ctx context.Context, path string, pub ed25519.PublicKey) (*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return Verify(ctx, f, st.Size(), pub)
}

const maxManifest = 16 << 20

// Verify checks a bundle with only the public key: the signature over
// manifest.json, that the zip holds exactly the listed files plus the
// manifest and signature, each file's size and SHA-256, the manifest's
// internal consistency, each MP4's own index against the manifest
// (codec, size, frames, duration within one frame), the contact sheets
// are JPEGs, the chain of custody, and finally that the zip's every
// byte is the canonical layout of those members. The error is a
// *VerifyError naming the file at fault.
func Verify(ctx context.Context, r io.ReaderAt, size int64, pub ed25519.PublicKey) (*Result, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, errors.New("evidence: verify: no public key")
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fail(WhereZip, "not a readable zip: %v", err)
	}
	members, err := zipMembers(zr)
	if err != nil {
		return nil, err
	}
	m, err := signedManifest(members, pub)
	if err != nil {
		return nil, err
	}
	order, err := memberOrder(m, zr, members)
	if err != nil {
		return nil, err
	}
	return newBundleCheck(r, size, m).run(ctx, order, members)
}

// zipMembers indexes the zip's members by name and makes sure the
// manifest and its signature are among them.
func zipMembers(zr *zip.Reader) (map[string]*zip.File, error) {
	members := map[string]*zip.File{}
	for _, f := range zr.File {
		if members[f.Name] != nil {
			return nil, fail(f.Name, "appears twice in the zip")
		}
		members[f.Name] = f
	}
	for _, name := range []string{ManifestName, SignatureName} {
		if members[name] == nil {
			return nil, fail(name, "missing from the bundle")
		}
	}
	return members, nil
}

// signedManifest reads manifest.json, checks its signature with pub and
// parses and checks it.
func signedManifest(members map[string]*zip.File, pub ed25519.PublicKey) (*Manifest, error) {
	mj, err := readMember(members[ManifestName], maxManifest)
	if err != nil {
		return nil, err
	}
	sig, err := readMember(members[SignatureName], 1024)
	if err != nil {
		return nil, err
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, fail(SignatureName, "%d bytes, not an Ed25519 signature", len(sig))
	}
	if !ed25519.Verify(pub, mj, sig) {
		return nil, fail(SignatureName, "the signature over manifest.json does not verify with key %s (fingerprint %s)", FormatPublicKey(pub), Fingerprint(pub))
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(mj))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fail(ManifestName, "does not parse: %v", err)
	}
	if m.SigningKey != FormatPublicKey(pub) || m.SigningKeyFingerprint != Fingerprint(pub) {
		return nil, fail(ManifestName, "names signing key %s, not the key it was verified with", m.SigningKey)
	}
	if err := m.check(); err != nil {
		return nil, &VerifyError{File: ManifestName, Reason: strings.TrimPrefix(err.Error(), ManifestName+": ")}
	}
	return &m, nil
}

// memberOrder returns the order the zip must hold its members in:
// exactly the listed files, in the listed order, then the manifest and
// its signature. It fails if the zip holds anything else or another
// order.
func memberOrder(m *Manifest, zr *zip.Reader, members map[string]*zip.File) ([]string, error) {
	order := make([]string, 0, len(m.Files)+2)
	listed := map[string]bool{}
	for _, f := range m.Files {
		order = append(order, f.Name)
		listed[f.Name] = true
	}
	order = append(order, ManifestName, SignatureName)
	for _, f := range zr.File {
		if !listed[f.Name] && f.Name != ManifestName && f.Name != SignatureName {
			return nil, fail(f.Name, "is in the zip but not in the manifest")
		}
	}
	for _, name := range order {
		if members[name] == nil {
			return nil, fail(name, "is listed in the manifest but missing from the zip")
		}
	}
	for i, f := range zr.File {
		if f.Name != order[i] {
			return nil, fail(f.Name, "is out of place in the zip (member %d, the manifest lists %s there)", i+1, order[i])
		}
	}
	return order, nil
}

// bundleCheck is the one pass over every member: the content is hashed
// and, at the same time, the canonical zip is rebuilt around it and
// compared with the bundle's bytes.
type bundleCheck struct {
	r      io.ReaderAt
	size   int64
	m      *Manifest
	listed map[string]FileEntry
	cams   map[string]CameraManifest
	sheets map[string]bool
	cmp    *compareWriter
	zw     *zip.Writer
	res    *Result
}

func newBundleCheck(r io.ReaderAt, size int64, m *Manifest) *bundleCheck {
	cmp := &compareWriter{r: r, size: size, diff: -1}
	b := &bundleCheck{
		r: r, size: size, m: m, cmp: cmp, zw: zip.NewWriter(cmp),
		listed: map[string]FileEntry{}, cams: map[string]CameraManifest{}, sheets: map[string]bool{},
		res: &Result{Manifest: m, Files: len(m.Files) + 2},
	}
	for _, f := range m.Files {
		b.listed[f.Name] = f
	}
	for _, c := range m.Cameras {
		b.cams[c.Video] = c
		if c.ContactSheet != "" {
			b.sheets[c.ContactSheet] = true
		}
	}
	return b
}

// run checks each member in order, then the rebuilt zip's tail.
func (b *bundleCheck) run(ctx context.Context, order []string, members map[string]*zip.File) (*Result, error) {
	for _, name := range order {
		if err := b.member(ctx, members[name]); err != nil {
			return nil, err
		}
	}
	b.cmp.where = "the zip's central directory"
	if err := b.zw.Close(); err != nil {
		return nil, err
	}
	if b.cmp.diff >= 0 {
		return nil, fail(WhereZip, "byte %d (in %s) is not what this bundle's members make", b.cmp.diff, b.cmp.diffWhere)
	}
	if b.cmp.off != b.size {
		return nil, fail(WhereZip, "%d bytes follow the end of the zip", b.size-b.cmp.off)
	}
	return b.res, nil
}

// member copies one member into the rebuilt zip while hashing it, then
// checks it against the manifest.
func (b *bundleCheck) member(ctx context.Context, f *zip.File) error {
	name := f.Name
	b.cmp.where = "the zip header of " + name
	fw, err := b.zw.CreateHeader(memberHeader(name, b.m.ExportedAt))
	if err != nil {
		return err
	}
	b.cmp.where = name
	rc, err := f.Open()
	if err != nil {
		return fail(name, "cannot be read: %v", err)
	}
	h := sha256.New()
	var keep bytes.Buffer // small members are checked after hashing
	dst := io.MultiWriter(fw, h)
	if name == CustodyName || b.sheets[name] {
		dst = io.MultiWriter(fw, h, &keep)
	}
	n, err := copyCtx(ctx, dst, rc)
	rc.Close()
	switch {
	case errors.Is(err, zip.ErrChecksum):
		return fail(name, "content changed (its CRC-32 does not match the zip's)")
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		return fail(name, "cannot be read: %v", err)
	}
	b.res.Bytes += n
	if name == ManifestName || name == SignatureName {
		return nil
	}
	return b.content(f, n, hex.EncodeToString(h.Sum(nil)), keep.Bytes())
}

// content checks a listed member's size and hash, and what its kind
// requires: an MP4's index, a contact sheet's JPEG header, the chain of
// custody.
func (b *bundleCheck) content(f *zip.File, n int64, sum string, kept []byte) error {
	name := f.Name
	want := b.listed[name]
	if n != want.Size {
		return fail(name, "is %d bytes, the manifest says %d", n, want.Size)
	}
	if sum != want.SHA256 {
		return fail(name, "SHA-256 %s, the manifest says %s", sum, want.SHA256)
	}
	if c, ok := b.cams[name]; ok {
		if err := checkMP4(b.r, f, c); err != nil {
			return err
		}
	}
	if b.sheets[name] {
		if _, err := jpeg.DecodeConfig(bytes.NewReader(kept)); err != nil {
			return fail(name, "is not a JPEG: %v", err)
		}
	}
	if name == CustodyName {
		return checkCustody(name, kept, b.m.Custody)
	}
	return nil
}

// checkCustody verifies the chain of custody on its own and against the
// manifest's account of it.
func checkCustody(name string, b []byte, c CustodyManifest) error {
	info, err := audit.VerifyExport(bytes.NewReader(b))
	if err != nil {
		return fail(name, "the chain of custody does not verify: %v", err)
	}
	if info.First != c.FirstSeq || info.Last != c.LastSeq || info.Entries != c.Entries || info.Prev != c.Prev || info.Head != c.Head {
		return fail(name, "holds seq %d..%d (head %.16s…), the manifest says %d..%d (head %.16s…)",
			info.First, info.Last, info.Head, c.FirstSeq, c.LastSeq, c.Head)
	}
	return nil
}

func readMember(f *zip.File, limit int64) ([]byte, error) {
	if f.UncompressedSize64 > uint64(limit) {
		return nil, fail(f.Name, "is %d bytes, more than %d", f.UncompressedSize64, limit)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fail(f.Name, "cannot be read: %v", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	switch {
	case errors.Is(err, zip.ErrChecksum):
		return nil, fail(f.Name, "content changed (its CRC-32 does not match the zip's)")
	case err != nil:
		return nil, fail(f.Name, "cannot be read: %v", err)
	case int64(len(b)) > limit:
		return nil, fail(f.Name, "is more than %d bytes", limit)
	}
	return b, nil
}

// checkMP4 reads the MP4's own index in place (members are stored) and
// compares it with the manifest.
func checkMP4(r io.ReaderAt, f *zip.File, c CameraManifest) error {
	off, err := f.DataOffset()
	if err != nil || f.Method != zip.Store {
		return fail(f.Name, "is not stored uncompressed")
	}
	info, err := ProbeMP4(io.NewSectionReader(r, off, int64(f.UncompressedSize64)), int64(f.UncompressedSize64))
	if err != nil {
		return fail(f.Name, "%v", err)
	}
	want := time.Duration(c.DurationSeconds * float64(time.Second))
	switch {
	case info.Codec != c.Codec:
		return fail(f.Name, "codec %s, the manifest says %s", info.Codec, c.Codec)
	case info.Width != c.Width || info.Height != c.Height:
		return fail(f.Name, "%dx%d, the manifest says %dx%d", info.Width, info.Height, c.Width, c.Height)
	case info.Frames != c.Frames:
		return fail(f.Name, "%d frames, the manifest says %d", info.Frames, c.Frames)
	case absDur(info.Duration-want) > max(info.FrameDuration(), time.Millisecond):
		return fail(f.Name, "lasts %v, the manifest says %v (more than one frame apart)", info.Duration, want)
	}
	return nil
}

func copyCtx(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		k, err := src.Read(buf)
		if k > 0 {
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return n, werr
			}
			n += int64(k)
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// compareWriter takes the rebuilt zip's bytes and compares them with the
// bundle's, remembering the first difference and what was being written
// there.
type compareWriter struct {
	r         io.ReaderAt
	size, off int64
	buf       []byte
	where     string
	diff      int64
	diffWhere string
}

func (c *compareWriter) Write(p []byte) (int, error) {
	if c.diff < 0 {
		if cap(c.buf) < len(p) {
			c.buf = make([]byte, len(p))
		}
		b := c.buf[:len(p)]
		k, _ := c.r.ReadAt(b, c.off)
		if i := firstDiff(b[:k], p); i >= 0 || k < len(p) {
			if i < 0 {
				i = k
			}
			c.diff, c.diffWhere = c.off+int64(i), c.where
		}
	}
	c.off += int64(len(p))
	return len(p), nil
}

func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b[:len(a)]) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// Summary is a verified bundle in a few lines for a person.
func Summary(res *Result) string {
	m := res.Manifest
	var b strings.Builder
	fmt.Fprintf(&b, "OK: bundle %s verified (%d files, %d bytes)\n", m.BundleID, res.Files, res.Bytes)
	fmt.Fprintf(&b, "  case %s, requested by %s (%s): %s\n", m.CaseNumber, m.Requester.User, m.Requester.Role, m.Reason)
	fmt.Fprintf(&b, "  exported %s UTC by %s, signed by %s\n", m.ExportedAt.Format("2006-01-02 15:04:05"), m.Software, m.SigningKey)
	for _, c := range m.Cameras {
		fmt.Fprintf(&b, "  %s: %s / %s / %s (%s on %s)\n", c.Video, c.SiteName, c.EntranceName, c.CameraName, c.CameraID, c.EdgeID)
		fmt.Fprintf(&b, "      %s .. %s UTC, %.3f s, %d frames, %s %dx%d, clock %s (offset %.0f ms), %d alerts, %d gate events\n",
			c.Actual.Start.Format("2006-01-02 15:04:05.000"), c.Actual.End.Format("15:04:05.000"), c.DurationSeconds, c.Frames,
			c.Codec, c.Width, c.Height, c.ClockSource, c.ClockOffsetMS, len(c.Alerts), len(c.GateEvents))
	}
	fmt.Fprintf(&b, "  chain of custody: audit seq %d..%d (%d entries), intact\n", m.Custody.FirstSeq, m.Custody.LastSeq, m.Custody.Entries)
	return b.String()
}
