package central

import (
	"crypto/ed25519"
	"log/slog"
	"net/http"
	"path/filepath"

	"github.com/vigil-perimeter/vigil/central/evidence"
)

// evidenceKeyFile is central's Ed25519 evidence signing key, in its data
// directory unless central.yaml's evidence_key_file names another place
// (mode 0600, made on first start). Its public half is what a
// court checks bundles with: GET /api/v1/evidence/key, or
// `vigil evidence pubkey --key-file DATA_DIR/central-evidence.key`.
const evidenceKeyFile = "central-evidence.key"

// loadEvidenceKey loads central's evidence key, making it on first start.
func loadEvidenceKey(cfg Config, log *slog.Logger) (ed25519.PrivateKey, error) {
	path := cfg.EvidenceKeyFile
	if path == "" {
		path = filepath.Join(cfg.DataDir, evidenceKeyFile)
	}
	key, created, err := evidence.LoadOrGenerateKey(path)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("evidence key created", "file", path, "sha256", evidence.Fingerprint(key.Public().(ed25519.PublicKey)))
	}
	return key, nil
}

// handleEvidenceKey serves GET /api/v1/evidence/key: central's evidence
// public key as PEM, as one line and its fingerprint, for
// `vigil evidence verify --key`.
func (api *evidenceAPI) handleEvidenceKey(w http.ResponseWriter, r *http.Request) {
	pub := api.key.Public().(ed25519.PublicKey)
	writeJSON(w, http.StatusOK, map[string]string{
		"pem":    string(evidence.PublicKeyPEM(pub)),
		"key":    evidence.FormatPublicKey(pub),
		"sha256": evidence.Fingerprint(pub),
	})
}

// serveBundle streams the signed bundle of a ready request, after its
// download entry is in the audit log (so the bundle's custody includes
// it); nothing is sent if that entry cannot be written.
func (api *evidenceAPI) serveBundle(w http.ResponseWriter, r *http.Request, req EvidenceRequest) {
	if !api.rec.auditOrRefuse(w, r, "download", req.ID, map[string]any{"what": "bundle", "case_number": req.CaseNumber}) {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Disposition", `attachment; filename="`+req.ID+`.zip"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	cw := &countingWriter{w: w}
	m, err := api.buildBundle(r.Context(), cw, req, api.key, api.auditLog)
	if err != nil {
		if cw.n == 0 {
			api.internalError(w, r, err)
			return
		}
		// The status line is gone; a cut-off zip fails verification.
		api.log.Error("evidence bundle failed", "request", req.ID, "err", err)
		return
	}
	api.log.Info("evidence bundle sent", "request", req.ID, "case_number", req.CaseNumber, "files", len(m.Files))
}

type countingWriter struct {
	w http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// EvidencePublicKey is the key a court checks this central's bundles with.
func (s *Server) EvidencePublicKey() ed25519.PublicKey {
	return s.evidenceKey.Public().(ed25519.PublicKey)
}
