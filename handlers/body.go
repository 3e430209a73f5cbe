package handlers

import (
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"
)

// readBody reads a webhook body of one of the allowed media types (any
// type when the request names none) up to cfg.MaxBodyBytes.
func readBody(c echo.Context, cfg Config, allowed ...string) ([]byte, *echo.HTTPError) {
	req := c.Request()
	if ct := req.Header.Get(echo.HeaderContentType); ct != "" && !slices.Contains(allowed, ct) {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !slices.Contains(allowed, mt) {
			return nil, echo.NewHTTPError(http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q: want %s", ct, joinOr(allowed)))
		}
	}
	if req.ContentLength > cfg.MaxBodyBytes {
		return nil, echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes", cfg.MaxBodyBytes))
	}
	body, err := readAll(req.Body, req.ContentLength, cfg.MaxBodyBytes+1)
	if err != nil {
		return nil, echo.NewHTTPError(http.StatusBadRequest, "reading body: "+err.Error())
	}
	if int64(len(body)) > cfg.MaxBodyBytes {
		return nil, echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes", cfg.MaxBodyBytes))
	}
	return body, nil
}

// readAll is io.ReadAll of at most limit bytes (io.LimitReader's, without
// its allocation) with the buffer sized from the request's Content-Length
// (one byte more, to see the end without growing it), so that a webhook
// body is read into one allocation.
func readAll(r io.Reader, contentLength, limit int64) ([]byte, error) {
	size := 512
	if contentLength > 0 && contentLength < 1<<20 {
		size = int(contentLength) + 1
	}
	b := make([]byte, 0, size)
	for int64(len(b)) < limit {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):min(int64(cap(b)), limit)])
		b = b[:len(b)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return b, err
		}
	}
	return b, nil
}

func joinOr(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	out := s[0]
	for _, v := range s[1 : len(s)-1] {
		out += ", " + v
	}
	return out + " or " + s[len(s)-1]
}
