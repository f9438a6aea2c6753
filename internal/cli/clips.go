package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/internal/cmdtable"
)

// clipsTable is `vigil clips <step>`: the edge's clip store, offline.
var clipsTable = cmdtable.Table{Commands: []cmdtable.Command{
	{Names: []string{"check", "verify"}, Run: clipsCheck},
}}

func runClips(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return clipsTable.Run(ctx, args, stdout, stderr)
}

// errClipsDamaged makes `vigil clips check` exit non-zero.
var errClipsDamaged = errors.New("clips check: the store has orphaned, missing or damaged segments")

// clipsCheck scans a stopped edge's segments against their index and
// prints each camera's video and gaps, and every problem.
func clipsCheck(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs, level := cmdtable.NewFlags("clips check", stderr)
	path := fs.String("config", "edge.yaml", "the edge's configuration file: its data_dir holds the store")
	dir := fs.String("dir", "", "the clip store directory (default: <data_dir>/clips of -config)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		cfg, err := edge.LoadConfig(*path)
		if err != nil {
			return err
		}
		*dir = filepath.Join(cfg.DataDir, "clips")
	}
	log, err := cmdtable.NewLogger(stderr, *level)
	if err != nil {
		return err
	}
	rep, err := clips.Verify(*dir, log)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printClipsReport(stdout, rep)
	}
	if !rep.OK() {
		return errClipsDamaged
	}
	return nil
}

func printClipsReport(w io.Writer, rep clips.VerifyReport) {
	fmt.Fprintf(w, "clip store %s (index: %s)\n", rep.Dir, rep.Index)
	if rep.V1 {
		fmt.Fprintln(w, "  a v1 store not upgraded yet: start the edge once to upgrade it")
	}
	for _, c := range rep.Cameras {
		fmt.Fprintf(w, "  %s: %d segments, %d frames, %d MiB, %s .. %s, %d gaps\n", c.Camera, c.Segments, c.Frames, c.Bytes>>20,
			c.First.Format("2006-01-02 15:04:05Z"), c.Last.Format("2006-01-02 15:04:05Z"), len(c.Gaps))
		for _, g := range c.Gaps {
			fmt.Fprintf(w, "    gap %s .. %s (%v)\n", g.Start.Format("2006-01-02 15:04:05.000Z"), g.End.Format("2006-01-02 15:04:05.000Z"), g.End.Sub(g.Start).Round(1e6))
		}
	}
	for _, l := range []struct {
		what  string
		items []string
	}{{"orphan (not indexed; indexed at the edge's next start)", rep.Orphans}, {"missing (indexed, no segment)", rep.Missing}, {"damaged", rep.Damaged}} {
		for _, it := range l.items {
			fmt.Fprintf(w, "  %s: %s\n", l.what, it)
		}
	}
	if rep.OK() {
		fmt.Fprintln(w, "ok")
	}
}
