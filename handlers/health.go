package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

type status struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// handleHealthz answers while the process serves HTTP at all.
func handleHealthz() echo.HandlerFunc {
	return func(c echo.Context) error {
		return c.JSON(http.StatusOK, status{Status: "ok"})
	}
}

// handleReadyz answers 200 only when JetStream is reachable and the streams
// exist, i.e. when an accepted event would be stored.
func handleReadyz(ready Checker) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
		defer cancel()
		if err := ready.Ready(ctx); err != nil {
			return c.JSON(http.StatusServiceUnavailable, status{Status: "unavailable", Error: err.Error()})
		}
		return c.JSON(http.StatusOK, status{Status: "ready"})
	}
}
