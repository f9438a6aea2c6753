package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/vigil-perimeter/vigil/internal/centralcli"
)

// forbidden are the packages central must not link: the cgo video path
// (FFmpeg, OpenCV) and the edge. Contact sheets for evidence bundles come
// from the edge (streams/contactsheet, wire.MethodContactSheet).
var forbidden = []string{
	"gocv.io/x/gocv",
	"github.com/vigil-perimeter/vigil/streams/",
	"github.com/vigil-perimeter/vigil/edge",
}

// goCmd runs the go tool at the module root with CGO_ENABLED=0 and no
// inherited GOFLAGS (make test's -race needs cgo).
func goCmd(t *testing.T, args ...string) []byte {
	t.Helper()
	// The go tool that runs this test: GOROOT's (runtime.GOROOT is where
	// the test binary was built from), else the one on PATH.
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		if gobin, err = exec.LookPath("go"); err != nil {
			t.Fatalf("no go tool in GOROOT or on PATH: %v", err)
		}
	}
	cmd := exec.Command(gobin, args...)
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// Central's packages and the central-only binary depend on no cgo video
// package and no edge package, so central builds and deploys without
// cgo, FFmpeg or OpenCV.
func TestCentralLinksNoCgoVideo(t *testing.T) {
	out := goCmd(t, "list", "-deps", "./cmd/vigil-central", "./central/...", "./internal/centralcli")
	var bad []string
	for _, p := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if p == strings.TrimSuffix(f, "/") || strings.HasPrefix(p, f) || strings.HasPrefix(p, f+"/") {
				bad = append(bad, p)
			}
		}
	}
	if len(bad) > 0 {
		t.Fatalf("central depends on %v: it must build without cgo, FFmpeg and OpenCV (see cmd/vigil-central)", bad)
	}
	// No dependency outside the standard library has cgo files either
	// (with CGO_ENABLED=0 they would be left out, or the build fail).
	out = goCmd(t, "list", "-deps", "-f", "{{if and (not .Standard) .CgoFiles}}{{.ImportPath}}{{end}}", "./cmd/vigil-central")
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Fatalf("central depends on cgo packages: %s", s)
	}
}

// The central-only binary builds with CGO_ENABLED=0 and runs.
func TestCentralBuildsWithoutCgo(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "vigil-central")
	goCmd(t, "build", "-o", bin, "./cmd/vigil-central")
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "vigil-central "+centralcli.Version {
		t.Fatalf("vigil-central version: %q %v", out, err)
	}
	// `vigil central ...` arguments work unchanged, with or without "central".
	for _, args := range [][]string{{"central", "user", "hash"}, {"user", "hash"}} {
		cmd := exec.Command(bin, args...)
		cmd.Stdin = strings.NewReader("correct horse battery staple\n")
		out, err := cmd.Output()
		if err != nil || !strings.HasPrefix(string(out), "$argon2id$") {
			t.Fatalf("vigil-central %s: %q %v", strings.Join(args, " "), out, err)
		}
	}
}
