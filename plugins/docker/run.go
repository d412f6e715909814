package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdkevent"
	"github.com/postee-dev/postee/sdk/sdkoutput"
)

// cleanupTimeout bounds what is done after the run: reading the output,
// killing and removing the container, also when the execution's own
// context has ended.
const cleanupTimeout = 30 * time.Second

// maxLastLine bounds the line of output quoted in an error.
const maxLastLine = 256

// Labels put on every container, so that leftovers can be found.
const (
	labelAction    = "dev.postee.action"
	labelExecution = "dev.postee.execution-id"
)

// Execute pulls the image if needed, runs the container, waits for it,
// collects its output and removes it.
func (a *dockerAction) Execute(ctx context.Context, ex *sdk.Execution) (sdk.Result, error) {
	cmd, err := a.command(ex.Event)
	if err != nil {
		return sdk.Result{}, sdk.Permanent(err)
	}
	if n := len("POSTEE_EVENT=") + len(ex.Message.Description) + 1; n > maxEnvLen {
		return sdk.Result{}, sdk.Permanentf("the description is %d bytes; POSTEE_EVENT can hold at most %d (shorten the template)", len(ex.Message.Description), maxEnvLen-len("POSTEE_EVENT=")-1)
	}
	env := make([]string, 0, len(a.env)+6)
	env = append(env, a.env...)
	env = append(env,
		"POSTEE_EVENT="+ex.Message.Description,
		"POSTEE_EVENT_ID="+ex.EventID,
		"POSTEE_ROUTE="+ex.Route,
		"POSTEE_ACTION="+ex.Action,
		"POSTEE_EXECUTION_ID="+ex.ID,
		"POSTEE_ATTEMPT="+strconv.Itoa(ex.Attempt),
	)

	runCtx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	details := map[string]string{"image": a.image}
	fail := func(what string, err error) (sdk.Result, error) {
		if runCtx.Err() != nil {
			return a.interrupted(ctx, details, "", what)
		}
		e := fmt.Errorf("%s: %w", what, err)
		if retryable(err) {
			return sdk.Result{Details: details}, e
		}
		return sdk.Result{Details: details}, sdk.Permanent(e)
	}

	pulled, err := a.ensureImage(runCtx)
	if pulled {
		details["pulled"] = "true"
	}
	if err != nil {
		return fail("image "+a.image, err)
	}

	name := containerName(a.name)
	created, err := a.client.ContainerCreate(runCtx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image:  a.image,
			Cmd:    cmd,
			Env:    env,
			Labels: map[string]string{labelAction: a.name, labelExecution: ex.ID},
		},
		HostConfig: &container.HostConfig{
			NetworkMode: container.NetworkMode(a.network),
			Mounts:      a.mounts,
		},
	})
	if err != nil {
		return fail("create container from "+a.image, err)
	}
	id := created.ID
	details["container"] = name
	details["container_id"] = shortID(id)
	// The container is removed whatever happens from here on.
	defer a.remove(ctx, id)

	waiter := a.client.ContainerWait(runCtx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := a.client.ContainerStart(runCtx, id, client.ContainerStartOptions{}); err != nil {
		return fail("start container "+name, err)
	}

	var exit int64
	select {
	case res := <-waiter.Result:
		if res.Error != nil && res.Error.Message != "" {
			return fail("wait for container "+name, errors.New(res.Error.Message))
		}
		exit = res.StatusCode
	case err := <-waiter.Error:
		if runCtx.Err() == nil {
			return fail("wait for container "+name, err)
		}
		return a.interrupted(ctx, details, id, "run container "+name)
	case <-runCtx.Done():
		return a.interrupted(ctx, details, id, "run container "+name)
	}

	out, total, logErr := a.output(ctx, id)
	details["exit_code"] = strconv.FormatInt(exit, 10)
	details["output_bytes"] = strconv.FormatInt(total, 10)
	res := sdk.Result{Output: out, Details: details}
	if logErr != nil {
		return res, fmt.Errorf("container %s exited with code %d, but its output could not be read: %w", name, exit, logErr)
	}
	if exit != 0 {
		msg := fmt.Sprintf("container %s exited with code %d", name, exit)
		if l := sdkoutput.LastLine(out, maxLastLine); l != "" {
			msg += ": " + l
		}
		return res, sdk.Permanent(errors.New(msg))
	}
	return res, nil
}

// command fills the placeholders of docker-cmd; nil keeps the image's CMD.
func (a *dockerAction) command(event []byte) ([]string, error) {
	if len(a.cmd) == 0 {
		return nil, nil
	}
	var ev any
	if a.placeholders {
		v, err := sdkevent.Decode(event)
		if err != nil {
			return nil, fmt.Errorf("docker-cmd: %w", err)
		}
		ev = v
	}
	cmd := make([]string, len(a.cmd))
	for i, t := range a.cmd {
		cmd[i], _ = t.Render(ev, sdkevent.NullMissing)
		if strings.ContainsRune(cmd[i], 0) {
			return nil, fmt.Errorf("docker-cmd: argument %d from the event contains a NUL byte", i+1)
		}
	}
	return cmd, nil
}

// ensureImage pulls the image as docker-pull says; pulled reports whether
// a pull was made.
func (a *dockerAction) ensureImage(ctx context.Context) (pulled bool, err error) {
	if a.pull != pullAlways {
		_, err := a.client.ImageInspect(ctx, a.image)
		switch {
		case err == nil:
			return false, nil
		case !cerrdefs.IsNotFound(err):
			return false, err
		case a.pull == pullNever:
			return false, sdk.Permanentf("not present on the Docker host and docker-pull is never")
		}
	}
	resp, err := a.client.ImagePull(ctx, a.image, client.ImagePullOptions{})
	if err != nil {
		return true, fmt.Errorf("pull: %w", err)
	}
	defer resp.Close()
	// The whole progress stream is read: the image is there only at its end.
	if err := resp.Wait(ctx); err != nil {
		return true, fmt.Errorf("pull: %w", err)
	}
	return true, nil
}

// interrupted ends an execution whose context ended: the timeout, or the
// host cancelling it. The container (if any) is killed; its output so far is
// kept; the deferred remove deletes it.
func (a *dockerAction) interrupted(ctx context.Context, details map[string]string, id, what string) (sdk.Result, error) {
	var res sdk.Result
	res.Details = details
	if id != "" {
		cctx, cancel := cleanupContext(ctx)
		_, killErr := a.client.ContainerKill(cctx, id, client.ContainerKillOptions{Signal: "KILL"})
		cancel()
		if killErr != nil && !cerrdefs.IsNotFound(killErr) && !cerrdefs.IsConflict(killErr) {
			sdk.Logger().Warn("kill container", "container", shortID(id), "error", killErr)
		}
		out, total, _ := a.output(ctx, id)
		res.Output = out
		details["output_bytes"] = strconv.FormatInt(total, 10)
	}
	if ctx.Err() != nil {
		// Cancelled by postee (shutdown, reload): a later attempt may run.
		return res, fmt.Errorf("%s: cancelled: %w", what, ctx.Err())
	}
	details["timed_out"] = "true"
	msg := fmt.Sprintf("%s: timed out after %s", what, a.timeout)
	if id != "" {
		msg += ", container killed"
		if l := sdkoutput.LastLine(res.Output, maxLastLine); l != "" {
			msg += ": " + l
		}
	}
	return res, errors.New(msg)
}

// output reads the container's stdout and stderr, in the order written.
func (a *dockerAction) output(ctx context.Context, id string) (string, int64, error) {
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	var buf sdkoutput.Buffer
	logs, err := a.client.ContainerLogs(cctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return "", 0, err
	}
	defer logs.Close()
	_, err = stdcopy.StdCopy(&buf, &buf, logs)
	out, _, total := buf.Result()
	return out, total, err
}

// remove force-removes the container and its anonymous volumes.
func (a *dockerAction) remove(ctx context.Context, id string) {
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	if _, err := a.client.ContainerRemove(cctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
		sdk.Logger().Warn("remove container", "container", shortID(id), "error", err)
	}
}

// cleanupContext outlives the execution's context (its values kept) for
// the bounded work done after a run.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}

// retryable reports whether a later attempt may succeed: an unreachable
// daemon, 5xx answers (the daemon's own failures, a registry it cannot
// reach) and timeouts. Refusals (bad image name or mount, unknown network,
// image not found in its registry, no permission) are permanent.
func retryable(err error) bool {
	if sdk.IsPermanent(err) {
		return false
	}
	if client.IsErrConnectionFailed(err) {
		return true
	}
	switch {
	case cerrdefs.IsNotFound(err), cerrdefs.IsInvalidArgument(err), cerrdefs.IsUnauthorized(err),
		cerrdefs.IsPermissionDenied(err), cerrdefs.IsFailedPrecondition(err), cerrdefs.IsNotImplemented(err),
		cerrdefs.IsAlreadyExists(err):
		return false
	}
	return true
}

// containerName is "postee-<action>-<random>", the action's name reduced to
// the characters Docker allows.
func containerName(action string) string {
	var sb strings.Builder
	for _, r := range action {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '_', r == '.', r == '-':
			sb.WriteRune(r)
		default:
			sb.WriteByte('-')
		}
		if sb.Len() >= 40 {
			break
		}
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	base := strings.Trim(sb.String(), "-.")
	if base == "" {
		base = "action"
	}
	return "postee-" + base + "-" + hex.EncodeToString(rnd[:])
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
