package cmdtable

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestProgramExitCodes(t *testing.T) {
	run := func(err error) Func {
		return func(context.Context, []string, io.Writer, io.Writer) error { return err }
	}
	var got []string
	p := Program{Name: "prog", Version: "1.2", Usage: "usage: prog\n", Table: Table{Commands: []Command{
		{Names: []string{"ok"}, Run: func(_ context.Context, args []string, _, _ io.Writer) error {
			got = args
			return nil
		}},
		{Names: []string{"fail", "f"}, Run: run(errors.New("boom"))},
		{Names: []string{"help-me"}, Run: run(flag.ErrHelp)},
		{Names: []string{"misused"}, Run: run(ErrUsage)},
	}}}
	tests := []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{nil, 2, "", "usage: prog"},
		{[]string{"nope"}, 2, "", `prog: unknown command "nope"`},
		{[]string{"ok", "a", "b"}, 0, "", ""},
		{[]string{"f"}, 1, "", "prog fail: boom"},
		{[]string{"help-me"}, 0, "", ""},
		{[]string{"misused"}, 2, "", ""},
		{[]string{"version"}, 0, "prog 1.2", ""},
		{[]string{"-h"}, 0, "usage: prog", ""},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := p.Main(tc.args, &out, &errOut); code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
			if !strings.Contains(out.String(), tc.stdout) || (tc.stdout == "" && out.Len() > 0) {
				t.Errorf("stdout %q, want %q", out.String(), tc.stdout)
			}
			if !strings.Contains(errOut.String(), tc.stderr) || (tc.stderr == "" && errOut.Len() > 0) {
				t.Errorf("stderr %q, want %q", errOut.String(), tc.stderr)
			}
		})
	}
	if strings.Join(got, " ") != "a b" {
		t.Errorf("ok got args %q", got)
	}
}

func TestTableDefault(t *testing.T) {
	var name string
	var args []string
	tb := Table{
		Commands: []Command{{Names: []string{"sub"}, Run: func(_ context.Context, a []string, _, _ io.Writer) error { name, args = "sub", a; return nil }}},
		Default:  &Command{Names: []string{"main"}, Run: func(_ context.Context, a []string, _, _ io.Writer) error { name, args = "main", a; return nil }},
	}
	for _, tc := range []struct {
		in   []string
		name string
		args string
	}{{[]string{"sub", "-x"}, "sub", "-x"}, {[]string{"--config", "c"}, "main", "--config c"}, {nil, "main", ""}} {
		if err := tb.Run(context.Background(), tc.in, io.Discard, io.Discard); err != nil || name != tc.name || strings.Join(args, " ") != tc.args {
			t.Errorf("%q: ran %s %q (%v), want %s %q", tc.in, name, args, err, tc.name, tc.args)
		}
	}
	var unknown *UnknownError
	if err := (Table{}).Run(context.Background(), []string{"x"}, io.Discard, io.Discard); !errors.As(err, &unknown) || unknown.Name != "x" {
		t.Errorf("no default: %v", err)
	}
}
