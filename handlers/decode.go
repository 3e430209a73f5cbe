package handlers

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// maxAdminBody bounds the JSON bodies of the admin API.
const maxAdminBody = 1 << 20

// validator is a request body that checks itself once decoded: Valid says
// what is wrong with it, if anything, for the 400 that answers it.
type validator interface {
	Valid() error
}

// decodeJSON reads a JSON request body of at most limit bytes into a T,
// refusing unknown fields and trailing data, then checks it with its Valid
// method if it has one. No body at all (Content-Length: 0) is the zero T.
// The error is the answer to return: a 400 that says what is wrong.
func decodeJSON[T any](c echo.Context, limit int64) (T, error) {
	var v T
	if c.Request().ContentLength != 0 {
		dec := json.NewDecoder(io.LimitReader(c.Request().Body, limit))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			return v, echo.NewHTTPError(http.StatusBadRequest, "invalid JSON body: "+strings.TrimPrefix(err.Error(), "json: "))
		}
		if dec.More() {
			return v, echo.NewHTTPError(http.StatusBadRequest, "invalid JSON body: trailing data")
		}
	}
	if val, ok := any(v).(validator); ok {
		if err := val.Valid(); err != nil {
			return v, echo.NewHTTPError(http.StatusBadRequest, err.Error())
		}
	}
	return v, nil
}
