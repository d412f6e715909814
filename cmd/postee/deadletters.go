package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// newDeadLettersCmd lists, shows and replays dead letters through a
// running postee's API (the store file is locked by that process).
func newDeadLettersCmd(stdout io.Writer) *cobra.Command {
	var base, key string
	cmd := &cobra.Command{
		Use:   "dead-letters",
		Short: "List, show and replay executions that failed for good (on a running postee)",
		Long: `Executions whose last attempt failed, or whose error said a retry cannot help,
are kept in postee's store (PATH_TO_DB) and survive restarts. These commands
talk to the running postee: --url is its webhook address, the API key is
--api-key or POSTEE_API_KEY.`,
	}
	cmd.PersistentFlags().StringVar(&base, "url", "http://127.0.0.1:8082", "the running postee's webhook address")
	cmd.PersistentFlags().StringVar(&key, "api-key", "", "API key (default: POSTEE_API_KEY)")
	call := func(method, path string) ([]byte, int, error) {
		k := key
		if k == "" {
			k = os.Getenv("POSTEE_API_KEY")
		}
		u := strings.TrimSuffix(base, "/")
		if !strings.Contains(u, "://") {
			u = "http://" + u
		}
		req, err := http.NewRequest(method, u+path, nil)
		if err != nil {
			return nil, 0, err
		}
		req.Header.Set("X-API-Key", k)
		resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
		if err != nil {
			return nil, 0, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		return body, resp.StatusCode, err
	}
	check := func(body []byte, code int, err error, ok ...int) error {
		if err != nil {
			return err
		}
		for _, c := range ok {
			if code == c {
				return nil
			}
		}
		return fmt.Errorf("postee answered %d: %s", code, strings.TrimSpace(string(body)))
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the dead letters, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			body, code, err := call("GET", "/dead-letters?limit=1000")
			if err := check(body, code, err, 200); err != nil {
				return err
			}
			var out struct {
				DeadLetters []struct {
					ExecutionID string    `json:"execution_id"`
					Route       string    `json:"route"`
					Action      string    `json:"action"`
					Attempts    int       `json:"attempts"`
					Error       string    `json:"error"`
					At          time.Time `json:"at"`
				} `json:"dead_letters"`
			}
			if err := json.Unmarshal(body, &out); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "EXECUTION\tAT\tROUTE\tACTION\tATTEMPTS\tERROR")
			for _, d := range out.DeadLetters {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", d.ExecutionID, d.At.Format(time.RFC3339), d.Route, d.Action, d.Attempts, firstLine(d.Error, 80))
			}
			return tw.Flush()
		},
	}
	show := &cobra.Command{
		Use:   "show EXECUTION-ID",
		Short: "Show one dead letter, with its event and message",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			body, code, err := call("GET", "/dead-letters/"+url.PathEscape(args[0]))
			if err := check(body, code, err, 200); err != nil {
				return err
			}
			_, err = stdout.Write(body)
			return err
		},
	}
	replay := &cobra.Command{
		Use:   "replay EXECUTION-ID",
		Short: "Run a dead letter's execution once more; it is removed when it succeeds",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			body, code, err := call("POST", "/dead-letters/"+url.PathEscape(args[0])+"/replay")
			if err := check(body, code, err, 200); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "replayed %s: ok\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(list, show, replay)
	return cmd
}

func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
