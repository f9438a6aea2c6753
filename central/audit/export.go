package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ExportInfo describes an exported slice of the log: its first and last
// seq, the prev hash its first entry commits to (the anchor in the live
// log) and the hash of its last entry.
type ExportInfo struct {
	First   uint64 `json:"first_seq"`
	Last    uint64 `json:"last_seq"`
	Entries int    `json:"entries"`
	Prev    string `json:"prev"`
	Head    string `json:"head"`
}

// maxLine bounds one exported line (an entry with MaxDetails of details
// and long names fits many times over).
const maxLine = 64 << 10

// Export writes the entries from seq from through seq to (to 0: the
// newest) as JSON lines, as stored but without their MACs (which only the
// audit key checks; the hash chain is what a third party verifies), to w.
// It refuses to export across a missing entry.
func (l *Log) Export(ctx context.Context, w io.Writer, from, to uint64) (ExportInfo, error) {
	if from == 0 {
		from = 1
	}
	if to == 0 {
		to, _ = l.Head()
	}
	if to < from {
		return ExportInfo{}, fmt.Errorf("audit: export: empty range %d..%d", from, to)
	}
	info := ExportInfo{First: from}
	bw := bufio.NewWriterSize(w, 64<<10)
	err := l.be().view(ctx, func(r reads) error {
		want := from
		err := r.scan(from, to, func(_ uint64, v []byte) error {
			if want%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			var e Entry
			err := func() error {
				if err := json.Unmarshal(v, &e); err != nil {
					return err
				}
				if e.MAC != "" {
					out := e
					out.MAC = ""
					var err error
					if v, err = marshal(out); err != nil {
						return err
					}
				}
				if _, err := bw.Write(v); err != nil {
					return err
				}
				return bw.WriteByte('\n')
			}()
			if err != nil {
				return fmt.Errorf("audit: export seq %d: %w", want, err)
			}
			if e.Seq != want {
				return &BreakError{Seq: want, Kind: BreakMissing, Detail: fmt.Sprintf("found seq %d", e.Seq)}
			}
			if want == from {
				info.Prev = e.Prev
			}
			info.Head, info.Last = e.Hash, e.Seq
			info.Entries++
			want++
			return nil
		})
		if err != nil {
			return err
		}
		if want <= to {
			return &BreakError{Seq: want, Kind: BreakMissing, Detail: "the log has no such entry"}
		}
		return nil
	})
	if err != nil {
		return info, err
	}
	return info, bw.Flush()
}

// VerifyExport checks an exported slice on its own: every line is an
// entry whose hash matches its content, seqs are consecutive, each prev is
// the hash of the line before and time never runs backwards. The first
// entry's prev is the anchor: compare it with the live log (CheckAnchor)
// or, for seq 1, with GenesisHash (VerifyExport does that itself).
func VerifyExport(r io.Reader) (ExportInfo, error) {
	var info ExportInfo
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var prev Entry
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(bytes.TrimSpace(b)) == 0 {
			return info, fmt.Errorf("audit: export line %d: empty line", line)
		}
		var e Entry
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return info, fmt.Errorf("audit: export line %d: %w", line, err)
		}
		if line == 1 {
			info.First, info.Prev = e.Seq, e.Prev
			if e.Seq == 0 {
				return info, fmt.Errorf("audit: export line 1: seq 0")
			}
			if e.Seq == 1 && e.Prev != GenesisHash {
				return info, &BreakError{Seq: 1, Kind: BreakPrevLink, Detail: "the first entry's prev is not the genesis hash"}
			}
			if b := check(e, e.Prev, e.Time); b != nil {
				return info, b
			}
		} else {
			if e.Seq != prev.Seq+1 {
				kind := BreakMissing
				if e.Seq <= prev.Seq {
					kind = BreakReordered
				}
				return info, &BreakError{Seq: prev.Seq + 1, Kind: kind, Detail: fmt.Sprintf("line %d is seq %d", line, e.Seq)}
			}
			if b := check(e, prev.Hash, prev.Time); b != nil {
				return info, b
			}
		}
		prev = e
		info.Last, info.Head = e.Seq, e.Hash
		info.Entries++
	}
	if err := sc.Err(); err != nil {
		return info, fmt.Errorf("audit: export line %d: %w", line+1, err)
	}
	if info.Entries == 0 {
		return info, errors.New("audit: export is empty")
	}
	return info, nil
}

// CheckAnchor ties a verified export to this log: its first entry's prev
// and its last entry's hash must be the live log's.
func (l *Log) CheckAnchor(ctx context.Context, info ExportInfo) error {
	first, err := l.Get(ctx, info.First)
	if err != nil {
		return err
	}
	if first.Prev != info.Prev {
		return &BreakError{Seq: info.First, Kind: BreakPrevLink, Detail: "the export's anchor is not the log's"}
	}
	last, err := l.Get(ctx, info.Last)
	if err != nil {
		return err
	}
	if last.Hash != info.Head {
		return &BreakError{Seq: info.Last, Kind: BreakEdited, Detail: "the export's last hash is not the log's"}
	}
	return nil
}
