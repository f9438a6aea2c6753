package central

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/vigil-perimeter/vigil/internal/kv"
)

// A backup is a zip of central's data directory: "store.badger" is the
// store in Badger's backup format (every key as of one instant, taken while
// central runs), and every other file of the directory (the edge hub's TLS
// key and certificate — which enrolled edges have pinned — keys, evidence
// copies) is stored under "files/". Zip streams without knowing sizes in
// advance, so a backup never needs scratch space on central's disk.
const (
	backupStore = "store.badger"
	backupFiles = "files/"
	// backupAuditKey is the audit key (audit_key_file), kept outside the
	// data directory so that write access to the store alone cannot forge
	// entries; a restore without it would report every entry as forged.
	backupAuditKey = "audit.key"
)

// badgerFile reports whether name (a file in the data directory's top
// level) is one of Badger's own, which the store's backup covers.
func badgerFile(name string) bool {
	switch name {
	case "MANIFEST", "KEYREGISTRY", "DISCARD", "LOCK":
		return true
	}
	ext := filepath.Ext(name)
	return ext == ".sst" || ext == ".vlog" || ext == ".mem"
}

// WriteBackup writes a backup of the store db, kept in dataDir, and of
// the audit key at auditKeyFile (if there is one), to w.
func WriteBackup(db *badger.DB, dataDir, auditKeyFile string, w io.Writer) error {
	zw := zip.NewWriter(w)
	now := time.Now().UTC()
	f, err := zw.CreateHeader(&zip.FileHeader{Name: backupStore, Method: zip.Deflate, Modified: now})
	if err != nil {
		return err
	}
	if _, err := db.Backup(f, 0); err != nil {
		return fmt.Errorf("central: backup: store: %w", err)
	}
	err = filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dataDir, p)
		if err != nil || rel == "." || !d.Type().IsRegular() {
			return err
		}
		if filepath.Dir(rel) == "." && (badgerFile(rel) || rel == kv.ReserveFile) {
			// The reserve is empty space the floor keeps (and remakes
			// after a restore), not data.
			return nil
		}
		return addBackupFile(zw, p, backupFiles+filepath.ToSlash(rel))
	})
	if err != nil {
		return fmt.Errorf("central: backup: %w", err)
	}
	if auditKeyFile != "" {
		if _, err := os.Stat(auditKeyFile); err == nil {
			if err := addBackupFile(zw, auditKeyFile, backupAuditKey); err != nil {
				return fmt.Errorf("central: backup: audit key: %w", err)
			}
		}
	}
	return zw.Close()
}

func addBackupFile(zw *zip.Writer, src, name string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	h, err := zip.FileInfoHeader(st)
	if err != nil {
		return err
	}
	h.Name, h.Method = name, zip.Deflate
	out, err := zw.CreateHeader(h)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return err
}

// RestoreBackup recreates a data directory from the backup file src, and
// the audit key at auditKeyFile. The directory must be empty or absent: a
// restore never merges into, or overwrites, a store that is in use; an
// audit key already there must be the backup's.
func RestoreBackup(src, dataDir, auditKeyFile string) error {
	zr, err := zip.OpenReader(src)
	if err != nil {
		return fmt.Errorf("central: restore: %s: %w", src, err)
	}
	defer zr.Close()
	if ents, err := os.ReadDir(dataDir); err == nil && len(ents) > 0 {
		return fmt.Errorf("central: restore: %s is not empty; restore into a new directory and point data_dir at it", dataDir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("central: restore: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("central: restore: %w", err)
	}
	var store *zip.File
	for _, f := range zr.File {
		switch {
		case f.Name == backupStore:
			store = f
		case strings.HasPrefix(f.Name, backupFiles):
			if err := restoreFile(f, dataDir); err != nil {
				return fmt.Errorf("central: restore: %s: %w", f.Name, err)
			}
		case f.Name == backupAuditKey:
			if err := restoreAuditKey(f, auditKeyFile); err != nil {
				return fmt.Errorf("central: restore: audit key: %w", err)
			}
		default:
			return fmt.Errorf("central: restore: %s: unexpected entry %q (not a Vigil central backup?)", src, f.Name)
		}
	}
	if store == nil {
		return fmt.Errorf("central: restore: %s holds no %s (not a Vigil central backup?)", src, backupStore)
	}
	db, err := kv.Open(kv.Options{Dir: dataDir, SyncWrites: true})
	if err != nil {
		return err
	}
	rc, err := store.Open()
	if err != nil {
		db.Close()
		return err
	}
	defer rc.Close()
	if err := db.Load(rc, 256); err != nil {
		db.Close()
		return fmt.Errorf("central: restore: store: %w", err)
	}
	return db.Close()
}

// restoreAuditKey writes the backup's audit key to path (0600), or checks
// that the key already there is the same.
func restoreAuditKey(f *zip.File, path string) error {
	if path == "" {
		return errors.New("no audit_key_file to restore it to")
	}
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	key, err := io.ReadAll(io.LimitReader(rc, 1<<10))
	if err != nil {
		return err
	}
	if have, err := os.ReadFile(path); err == nil {
		if !bytes.Equal(have, key) {
			return fmt.Errorf("%s holds another key than this backup's; move it away and restore again", path)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := out.Write(key); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// restoreFile writes one files/ entry below dataDir, refusing names that
// would land outside it.
func restoreFile(f *zip.File, dataDir string) error {
	rel := strings.TrimPrefix(f.Name, backupFiles)
	if rel == "" || strings.HasSuffix(rel, "/") {
		return nil // a directory entry
	}
	clean := path.Clean(rel)
	if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		return errors.New("path leaves the data directory")
	}
	if clean == kv.ReserveFile {
		return nil // empty space, from a backup taken before it was left out
	}
	dst := filepath.Join(dataDir, filepath.FromSlash(clean))
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.Mode().Perm()|0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, rc); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// backupAPI is the backup component: the running central's store, data
// directory and audit key as one zip (WriteBackup). New builds it.
type backupAPI struct {
	db       *badger.DB
	dataDir  string
	auditKey string // the audit key's file (auditKeyPath)
	log      *slog.Logger
}

// handleBackup serves GET /api/v1/admin/backup (admin): a backup of the
// running central, streamed.
func (b *backupAPI) handleBackup(w http.ResponseWriter, r *http.Request) {
	name := "vigil-central-" + time.Now().UTC().Format("20060102T150405Z") + ".zip"
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	if err := WriteBackup(b.db, b.dataDir, b.auditKey, w); err != nil {
		// The status line is gone; a cut-off zip fails to open, and the
		// log says why.
		b.log.Error("backup failed", "err", err)
		return
	}
	by := ""
	if p := principalOf(r); p != nil {
		by = p.Name
	}
	b.log.Info("backup written", "by", by)
}

// BackupStopped writes a backup of the data directory of a central that is
// not running (Badger allows one process per store; a running central is
// backed up through GET /api/v1/admin/backup instead).
func BackupStopped(dataDir, auditKeyFile string, w io.Writer) error {
	// The store's floor keeps Badger's files from SIGBUS on a full disk.
	floor, err := kv.NewFloor(dataDir, DefaultMinFree, DefaultReserve)
	if err != nil {
		return fmt.Errorf("central: backup: %w", err)
	}
	db, err := kv.Open(kv.Options{Dir: dataDir, SyncWrites: true, Floor: floor})
	if err != nil {
		return fmt.Errorf("central: backup: %w (is central running? use GET /api/v1/admin/backup)", err)
	}
	defer db.Close()
	return WriteBackup(db, dataDir, auditKeyFile, w)
}
