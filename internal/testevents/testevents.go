package testevents

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
)

// Scan is the image scan report Trivy returns.
type Scan struct {
	Image                string      `json:"image"`
	ID                   string      `json:"id"`
	Digest               string      `json:"digest"`
	Registry             string      `json:"registry"`
	OS                   string      `json:"os"`
	OSVersion            string      `json:"version"`
	ScanStarted          string      `json:"scan_started"`
	Scanner              string      `json:"scanner"`
	VulnerabilitySummary Summary     `json:"vulnerability_summary"`
	Resources            []Resource  `json:"resources"`
	ImageAssurance       ImagePolicy `json:"image_assurance_results"`
}

// Summary counts vulnerabilities per severity.
type Summary struct {
	Total      int `json:"total"`
	Critical   int `json:"critical"`
	High       int `json:"high"`
	Medium     int `json:"medium"`
	Low        int `json:"low"`
	Negligible int `json:"negligible"`
}

// Resource is one package of the image with its vulnerabilities.
type Resource struct {
	Resource        Package         `json:"resource"`
	Vulnerabilities []Vulnerability `json:"vulnerabilities"`
}

// Package identifies an installed package.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Format  string `json:"format"`
}

// Vulnerability is one finding in a package (the Resource it is listed in).
type Vulnerability struct {
	Name             string `json:"name"`
	InstalledVersion string `json:"installed_version"`
	FixVersion       string `json:"fix_version"`
	Severity         string `json:"severity"`
	Description      string `json:"description"`
	NVDURL           string `json:"nvd_url"`
}

// ImagePolicy is the assurance verdict.
type ImagePolicy struct {
	Disallowed bool `json:"disallowed"`
}

var packages = []Package{
	{"openssl", "3.1.0-r4", "apk"},
	{"busybox", "1.36.0-r9", "apk"},
	{"musl", "1.2.4-r0", "apk"},
	{"zlib", "1.2.13-r1", "apk"},
	{"curl", "8.1.2-r0", "apk"},
	{"libxml2", "2.11.4-r0", "apk"},
	{"ncurses-libs", "6.4_p20230506-r0", "apk"},
	{"expat", "2.5.0-r1", "apk"},
}

var severities = []string{"critical", "high", "high", "medium", "medium", "medium", "low", "low", "negligible"}

var weaknesses = []string{
	"Heap overflow on crafted input",
	"Out-of-bounds read in certificate checks",
	"Use-after-free on malformed headers",
	"Integer overflow in a length check",
	"NULL dereference on an empty record",
	"Memory exhaustion on nested documents",
}

// Trivy returns an image scan report as compact JSON, about 5 KB with 20
// vulnerabilities. The event's "id" is strconv.Itoa(id), so load tests can
// recognise it at a sink; everything else depends only on vulns. The output
// is the same for the same arguments.
func Trivy(id int, vulns int) []byte {
	idStr := strconv.Itoa(id)
	sum := sha256.Sum256([]byte("postee-test-image:" + idStr))
	s := Scan{
		Image:       "registry.example.com/team/alpine:3.18",
		ID:          idStr,
		Digest:      "sha256:" + hex.EncodeToString(sum[:]),
		Registry:    "registry.example.com",
		OS:          "alpine",
		OSVersion:   "3.18.2",
		ScanStarted: "2024-03-01T12:00:00Z",
		Scanner:     "trivy",
	}
	byPkg := make([]Resource, 0, len(packages))
	index := map[string]int{}
	for i := range vulns {
		p := packages[(i*5+i/len(packages))%len(packages)]
		sev := severities[i%len(severities)]
		cve := fmt.Sprintf("CVE-%d-%d", 2019+i%5, 10000+(i*7919)%89999)
		fix := ""
		if i%3 != 2 {
			fix = bump(p.Version)
		}
		v := Vulnerability{
			Name:             cve,
			InstalledVersion: p.Version,
			FixVersion:       fix,
			Severity:         sev,
			Description:      weaknesses[i%len(weaknesses)] + ".",
			NVDURL:           "https://nvd.nist.gov/vuln/detail/" + cve,
		}
		switch sev {
		case "critical":
			s.VulnerabilitySummary.Critical++
		case "high":
			s.VulnerabilitySummary.High++
		case "medium":
			s.VulnerabilitySummary.Medium++
		case "low":
			s.VulnerabilitySummary.Low++
		default:
			s.VulnerabilitySummary.Negligible++
		}
		s.VulnerabilitySummary.Total++
		k, ok := index[p.Name]
		if !ok {
			k = len(byPkg)
			index[p.Name] = k
			byPkg = append(byPkg, Resource{Resource: p})
		}
		byPkg[k].Vulnerabilities = append(byPkg[k].Vulnerabilities, v)
	}
	s.Resources = byPkg
	s.ImageAssurance.Disallowed = s.VulnerabilitySummary.Critical > 0
	return mustMarshal(s)
}

// bump returns a plausible fixed version: the package revision plus one.
func bump(version string) string {
	for i := len(version) - 1; i >= 0; i-- {
		if version[i] == 'r' && i+1 < len(version) {
			if n, err := strconv.Atoi(version[i+1:]); err == nil {
				return version[:i+1] + strconv.Itoa(n+1)
			}
		}
	}
	return version + ".1"
}

// Finding is a Tracee signature finding.
type Finding struct {
	Data        map[string]any `json:"Data"`
	Context     Context        `json:"Context"`
	SigMetadata SigMetadata    `json:"SigMetadata"`
}

// SigMetadata describes the signature that fired.
type SigMetadata struct {
	ID          string         `json:"ID"`
	Version     string         `json:"Version"`
	Name        string         `json:"Name"`
	Description string         `json:"Description"`
	Tags        []string       `json:"Tags"`
	Properties  map[string]any `json:"Properties"`
}

// Context is the event that triggered the signature.
type Context struct {
	Timestamp           int64  `json:"timestamp"`
	ProcessorID         int    `json:"processorId"`
	ProcessID           int    `json:"processId"`
	ThreadID            int    `json:"threadId"`
	ParentProcessID     int    `json:"parentProcessId"`
	HostProcessID       int    `json:"hostProcessId"`
	HostThreadID        int    `json:"hostThreadId"`
	HostParentProcessID int    `json:"hostParentProcessId"`
	UserID              int    `json:"userId"`
	MountNamespace      int64  `json:"mountNamespace"`
	PIDNamespace        int64  `json:"pidNamespace"`
	ProcessName         string `json:"processName"`
	HostName            string `json:"hostName"`
	ContainerID         string `json:"containerId"`
	ContainerImage      string `json:"containerImage"`
	PodName             string `json:"podName"`
	EventID             string `json:"eventId"`
	EventName           string `json:"eventName"`
	PID                 int    `json:"pid"`
	ArgsNum             int    `json:"argsNum"`
	ReturnValue         int    `json:"returnValue"`
	Args                []Arg  `json:"args"`
}

// Arg is one argument of the traced call.
type Arg struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

type signature struct {
	name, description, mitre, technique, category string
	severity                                      int
}

var signatures = map[string]signature{
	"TRC-1": {"Standard Input/Output Over Socket",
		"A process had its standard input or output redirected to a network socket, as reverse shells do.",
		"Execution: Command and Scripting Interpreter", "Unix Shell", "execution", 3},
	"TRC-2": {"Anti-Debugging",
		"A process called ptrace on itself, a technique malware uses to resist analysis.",
		"Defense Evasion: Execution Guardrails", "Debugger Evasion", "defense-evasion", 3},
	"TRC-3": {"Code Injection",
		"A process wrote into the memory of another process, which can be used to run code under its identity.",
		"Privilege Escalation: Process Injection", "Ptrace System Calls", "privilege-escalation", 3},
	"TRC-4": {"Dynamic Code Loading",
		"A writable and executable memory region was created, a sign of code unpacked at run time.",
		"Defense Evasion: Obfuscated Files or Information", "Software Packing", "defense-evasion", 2},
	"TRC-5": {"Fileless Execution",
		"A program was executed from memory rather than from a file on disk.",
		"Defense Evasion: Reflective Code Loading", "Reflective Code Loading", "defense-evasion", 3},
}

// Tracee returns a Tracee finding for signature sigID (TRC-1 to TRC-5 have
// their own metadata; any other id gets generic metadata) seen on host, as
// compact JSON. The output is the same for the same arguments.
func Tracee(sigID string, host string) []byte {
	sig, ok := signatures[sigID]
	if !ok {
		sig = signature{"Suspicious Behaviour", "A process behaved in a way that matches signature " + sigID + ".",
			"Discovery: System Information Discovery", "System Information Discovery", "discovery", 1}
	}
	f := Finding{
		Data: map[string]any{
			"ip":   "10.0.7.23",
			"port": 4444,
			"fd":   0,
		},
		Context: Context{
			Timestamp:           1709294400123456789,
			ProcessorID:         1,
			ProcessID:           4712,
			ThreadID:            4712,
			ParentProcessID:     4701,
			HostProcessID:       98312,
			HostThreadID:        98312,
			HostParentProcessID: 98290,
			UserID:              0,
			MountNamespace:      4026532585,
			PIDNamespace:        4026532588,
			ProcessName:         "sh",
			HostName:            host,
			ContainerID:         "7f3e8c1d2b4a5968a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4",
			ContainerImage:      "registry.example.com/team/web:1.4.2",
			PodName:             "web-6d4cf56db6-x2x7k",
			EventID:             "1006",
			EventName:           "security_socket_connect",
			PID:                 4712,
			ArgsNum:             2,
			ReturnValue:         0,
			Args: []Arg{
				{Name: "sockfd", Type: "int", Value: 0},
				{Name: "remote_addr", Type: "struct sockaddr*", Value: map[string]any{
					"sa_family": "AF_INET", "sin_addr": "10.0.7.23", "sin_port": "4444",
				}},
			},
		},
		SigMetadata: SigMetadata{
			ID:          sigID,
			Version:     "0.1.0",
			Name:        sig.name,
			Description: sig.description,
			Tags:        []string{"linux", "container"},
			Properties: map[string]any{
				"Severity":             sig.severity,
				"Category":             sig.category,
				"Technique":            sig.technique,
				"MITRE ATT&CK":         sig.mitre,
				"external_id":          "T1059.004",
				"signatureName":        sig.name,
				"signatureDescription": sig.description,
			},
		},
	}
	return mustMarshal(f)
}

func mustMarshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("testevents: %v", err))
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
