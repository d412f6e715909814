package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/postee-dev/postee/sdk"
)

const (
	// pageSize is how many pods one list request asks for.
	pageSize = 500
	// maxPages bounds the pages of one listing (a server that keeps
	// answering with a continue token).
	maxPages = 200
	// fieldManager names postee in the pods' managed fields.
	fieldManager = "postee"
	userAgent    = "postee-action-kubernetes"
)

// Only the core/v1 types are needed: pods, their lists, Status errors and
// the options encoded as query parameters.
var (
	scheme     = runtime.NewScheme()
	codecs     serializer.CodecFactory
	paramCodec runtime.ParameterCodec
)

func init() {
	utilruntime.Must(corev1.AddToScheme(scheme))
	codecs = serializer.NewCodecFactory(scheme)
	paramCodec = runtime.NewParameterCodec(scheme)
}

// restConfig loads the kubeconfig file, or the in-cluster service account
// when path is empty. Both only read local files.
func restConfig(path string) (*rest.Config, error) {
	const key = "kube-config-file"
	if strings.TrimSpace(path) != "" {
		rc, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return nil, sdk.SettingsErrorf(key, "cannot load the kubeconfig: %v", err)
		}
		return rc, nil
	}
	rc, err := rest.InClusterConfig()
	if err != nil {
		return nil, sdk.SettingsErrorf(key, "is empty, so the in-cluster service account is used, but it cannot be: %v (set kube-config-file to a kubeconfig path when postee runs outside the cluster)", err)
	}
	return rc, nil
}

// newClient returns a REST client for the core/v1 API of rc's cluster.
func newClient(rc *rest.Config) (rest.Interface, error) {
	c := rest.CopyConfig(rc)
	c.GroupVersion = &corev1.SchemeGroupVersion
	c.APIPath = "/api"
	c.NegotiatedSerializer = codecs.WithoutConversion()
	c.ContentType = runtime.ContentTypeJSON
	c.AcceptContentTypes = runtime.ContentTypeJSON
	if c.UserAgent == "" {
		c.UserAgent = userAgent
	}
	// client-go's default of 5 requests a second would slow down patching
	// a large set of pods; the API server's own fairness still applies.
	if c.QPS == 0 {
		c.QPS = 50
	}
	if c.Burst == 0 {
		c.Burst = 100
	}
	return rest.RESTClientFor(c)
}

// serverOf returns the scheme and host of the API server's address.
func serverOf(host string) string {
	u, err := url.Parse(host)
	if err != nil || u.Host == "" {
		return "the API server"
	}
	return u.Scheme + "://" + u.Host
}

// listPods returns the names of the namespace's pods matching selector,
// following continue tokens. client-go's own retries are off: the host
// retries the execution with its policy.
func (a *kubeAction) listPods(ctx context.Context, selector string) ([]string, error) {
	opts := metav1.ListOptions{LabelSelector: selector, Limit: pageSize}
	var names []string
	for page := 0; ; page++ {
		if page == maxPages {
			return nil, fmt.Errorf("the API server still had more pods after %d pages of %d", maxPages, pageSize)
		}
		var list corev1.PodList
		err := a.client.Get().
			Namespace(a.namespace).
			Resource("pods").
			VersionedParams(&opts, paramCodec).
			MaxRetries(0).
			Do(ctx).
			Into(&list)
		if err != nil {
			return nil, err
		}
		for _, p := range list.Items {
			if p.Name == "" {
				return nil, errors.New("the API server listed a pod without a name")
			}
			names = append(names, p.Name)
		}
		if list.Continue == "" {
			return names, nil
		}
		opts.Continue = list.Continue
	}
}

// patchPod sends the JSON merge patch to one pod.
func (a *kubeAction) patchPod(ctx context.Context, name string, patch []byte) error {
	var pod corev1.Pod
	return a.client.Patch(types.MergePatchType).
		Namespace(a.namespace).
		Resource("pods").
		Name(name).
		VersionedParams(&metav1.PatchOptions{FieldManager: fieldManager}, paramCodec).
		Body(patch).
		MaxRetries(0).
		Do(ctx).
		Into(&pod)
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }

// retryable reports whether a later attempt may succeed: 429, 5xx, 408 and
// 409, and errors without an API status (network, timeouts, odd answers).
// 401, 403, 404, 422 and other answers are permanent.
func retryable(err error) bool {
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		return true
	}
	if apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsConflict(err) ||
		apierrors.IsUnexpectedServerError(err) {
		return true
	}
	code := st.Status().Code
	return code == 408 || code == 429 || code >= 500
}

// describe is err as the API server gave it: status code, reason, message.
func describe(err error) string {
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		s := st.Status()
		msg := boundErr(errors.New(s.Message))
		if s.Code != 0 {
			return fmt.Sprintf("%d %s: %s", s.Code, s.Reason, msg)
		}
		return msg
	}
	return boundErr(err)
}

// setRetryAfter records the delay the API server asked for, if any.
func setRetryAfter(details map[string]string, err error) {
	if secs, ok := apierrors.SuggestsClientDelay(err); ok && secs > 0 {
		details["retry_after"] = strconv.Itoa(secs)
	}
}

// callError is the execution's error for a failed list request.
func (a *kubeAction) callError(what string, err error, details map[string]string) error {
	setRetryAfter(details, err)
	var st apierrors.APIStatus
	if errors.As(err, &st) && st.Status().Code != 0 {
		details["status_code"] = strconv.Itoa(int(st.Status().Code))
	}
	e := fmt.Errorf("%s: %s", what, describe(err))
	if retryable(err) {
		return e
	}
	return sdk.Permanent(e)
}

// podFailure is a pod the patch failed for.
type podFailure struct {
	name string
	err  error
}

// podsError names every pod that could not be patched. It is permanent when
// no failure is retryable (a retry patches every pod again; the patch sets
// the same values, so that is harmless).
func (a *kubeAction) podsError(failures []podFailure, matched int, details map[string]string) error {
	const maxMsg = 4 << 10
	permanent := true
	for _, f := range failures {
		if retryable(f.err) {
			permanent = false
			if details["retry_after"] == "" {
				setRetryAfter(details, f.err)
			}
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d of %d pods in namespace %s could not be patched: ", len(failures), matched, a.namespace)
	for i, f := range failures {
		if sb.Len() > maxMsg {
			fmt.Fprintf(&sb, "; … (%d more)", len(failures)-i)
			break
		}
		if i > 0 {
			sb.WriteString("; ")
		}
		fmt.Fprintf(&sb, "pod %s: %s", f.name, describe(f.err))
	}
	e := errors.New(sb.String())
	if permanent {
		return sdk.Permanent(e)
	}
	return e
}
