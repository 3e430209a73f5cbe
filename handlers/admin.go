package handlers

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// DeadLetterQueue is where failed jobs are parked, for the admin API.
type DeadLetterQueue interface {
	// DeadLetters returns up to limit of the dead letters f selects,
	// oldest first, each as GET /v1/dlq shows it: its JSON encoding.
	DeadLetters(ctx context.Context, f DeadLetterFilter, limit int) ([]any, error)
	// Redrive puts the dead letters f selects back on the work queue and
	// says how many it moved (before the error, if there is one).
	Redrive(ctx context.Context, f DeadLetterFilter) (int, error)
}

// DeadLetterFilter selects dead letters; empty fields match every one. It
// is the body of POST /v1/dlq/redrive.
type DeadLetterFilter struct {
	Task string `json:"task,omitempty"`
	Key  string `json:"key,omitempty"`
}

// requireAdmin lets a request through only with "Authorization: Bearer
// <token>" naming one of tokens. With no tokens configured the admin API is
// off.
func requireAdmin(tokens []string) echo.MiddlewareFunc {
	set := newTokenSet(tokens)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if len(tokens) == 0 {
				return echo.NewHTTPError(http.StatusForbidden, "admin API disabled: set admin.tokens in the configuration")
			}
			got, ok := strings.CutPrefix(c.Request().Header.Get(echo.HeaderAuthorization), "Bearer ")
			if !ok || got == "" {
				return echo.NewHTTPError(http.StatusUnauthorized, "missing Authorization: Bearer <admin token>")
			}
			if !set.match(got) {
				return echo.NewHTTPError(http.StatusUnauthorized, "admin token not accepted")
			}
			return next(c)
		}
	}
}

// DeadLetterList is the body of GET /v1/dlq.
type DeadLetterList struct {
	DeadLetters []any `json:"dead_letters"`
	Count       int   `json:"count"`
}

// handleDLQList lists dead letters, oldest first (?task=, ?key=, ?limit=,
// default 100, at most 1000).
func handleDLQList(dlq DeadLetterQueue) echo.HandlerFunc {
	return func(c echo.Context) error {
		limit := 100
		if v := c.QueryParam("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				return echo.NewHTTPError(http.StatusBadRequest, "limit: want 1 to 1000")
			}
			limit = n
		}
		f := DeadLetterFilter{Task: c.QueryParam("task"), Key: c.QueryParam("key")}
		dls, err := dlq.DeadLetters(c.Request().Context(), f, limit)
		if err != nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "reading the dead-letter queue: "+err.Error())
		}
		if dls == nil {
			dls = []any{}
		}
		return c.JSON(http.StatusOK, DeadLetterList{DeadLetters: dls, Count: len(dls)})
	}
}

// RedriveResult is the body of POST /v1/dlq/redrive.
type RedriveResult struct {
	Redriven int `json:"redriven"`
}

// handleDLQRedrive puts dead letters back on the work queue: all of them,
// or those of one task and/or key (JSON body {"task": ..., "key": ...}).
func handleDLQRedrive(dlq DeadLetterQueue) echo.HandlerFunc {
	return func(c echo.Context) error {
		f, err := decodeJSON[DeadLetterFilter](c, maxAdminBody)
		if err != nil {
			return err
		}
		n, err := dlq.Redrive(c.Request().Context(), f)
		if err != nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "redrive stopped after "+strconv.Itoa(n)+" jobs: "+err.Error())
		}
		return c.JSON(http.StatusOK, RedriveResult{Redriven: n})
	}
}
