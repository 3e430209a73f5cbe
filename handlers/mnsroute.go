package handlers

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/oss2s3/oss2s3/handlers/intake"
	"github.com/oss2s3/oss2s3/handlers/mns"
	"github.com/oss2s3/oss2s3/metrics"
)

// handleMNS receives an MNS HTTP push subscription's notification. The
// RSA-SHA1 signature is checked with the certificate MNS names (fetched
// only from the allowed hosts, and cached); the notification may be XML,
// JSON or SIMPLIFIED, the OSS document inside plain or Base64. 204 only once
// every job is stored; 403 for a bad signature. MNS's signing keys are weak
// (512-bit RSA), so an unguessable path token (mns.path_tokens) should be
// required as well.
func handleMNS(log *slog.Logger, m *metrics.Metrics, in *intake.Intake, cfg Config) echo.HandlerFunc {
	reject := rejecter(log, m, metrics.SourceMNS)
	return func(c echo.Context) error {
		if cfg.MNS == nil {
			return reject(c, http.StatusForbidden, 0, "MNS endpoint disabled: set mns.enabled in the configuration")
		}
		if len(cfg.MNSPathTokens) > 0 {
			match := 0
			for _, t := range cfg.MNSPathTokens {
				match |= subtle.ConstantTimeCompare([]byte(c.Param("token")), []byte(t))
			}
			if match != 1 {
				return reject(c, http.StatusForbidden, 0, "unknown MNS endpoint path token")
			}
		}
		req := c.Request()
		body, herr := readBody(c, cfg, echo.MIMEApplicationXML, echo.MIMETextXML, echo.MIMEApplicationJSON, echo.MIMETextPlain)
		if herr != nil {
			return reject(c, herr.Code, 0, herr.Message.(string))
		}
		vctx, cancel := context.WithTimeout(req.Context(), 4*time.Second)
		defer cancel()
		if err := cfg.MNS.Verify(vctx, req.Method, req.RequestURI, req.Header, body); err != nil {
			if errors.Is(err, mns.ErrCertFetch) {
				// Ours to fix (or the network's): MNS pushes again later.
				return reject(c, http.StatusInternalServerError, 0, err.Error())
			}
			return reject(c, http.StatusForbidden, 0, err.Error())
		}
		doc, err := mns.ParseNotification(body, req.Header.Get(echo.HeaderContentType))
		if err != nil {
			return reject(c, http.StatusBadRequest, 0, err.Error())
		}
		if _, err := in.Accept(cfg.deadlines.context(), metrics.SourceMNS, doc.Events); err != nil {
			return unavailable(c, cfg, err)
		}
		return c.NoContent(http.StatusNoContent)
	}
}
