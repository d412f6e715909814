package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"sort"
	"strings"
)

// maxMXHosts bounds the MX hosts tried for one recipient.
const maxMXHosts = 5

// deliverRelay sends one message, addressed to all recipients, through the
// configured server, to the envelope recipients pending (those not
// delivered by an earlier attempt).
func (a *emailAction) deliverRelay(ctx context.Context, msg *message, all, pending []*mail.Address) (map[string]outcome, connInfo) {
	return a.converse(ctx, a.host, a.user != "", msg, all, pending)
}

// deliverMX sends each pending recipient their own copy, addressed to them
// alone, through the MX servers of their domain, trying them in order of
// preference until one takes it or refuses it permanently.
func (a *emailAction) deliverMX(ctx context.Context, msg *message, pending []*mail.Address) map[string]outcome {
	results := make(map[string]outcome, len(pending))
	hostsOf := map[string][]string{}
	lookupErr := map[string]outcome{}
	for _, r := range pending {
		domain := domainOf(r.Address)
		if _, done := hostsOf[domain]; !done {
			if _, failed := lookupErr[domain]; !failed {
				hosts, o := a.mxHosts(ctx, domain)
				if o != nil {
					lookupErr[domain] = *o
				} else {
					hostsOf[domain] = hosts
				}
			}
		}
		if o, failed := lookupErr[domain]; failed {
			results[r.Address] = o
			continue
		}
		var last outcome
		for _, h := range hostsOf[domain] {
			got, _ := a.converse(ctx, h, false, msg, []*mail.Address{r}, []*mail.Address{r})
			last = got[r.Address]
			if last.delivered || !last.temporary || ctx.Err() != nil {
				break
			}
		}
		results[r.Address] = last
	}
	return results
}

// domainOf is the domain of an address, lower-cased.
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(addr[i+1:], "."))
}

// mxHosts returns the hosts to try for domain, best first: its MX records,
// or the domain itself when it has none (RFC 5321 section 5.1). A failure
// is returned as the recipients' outcome.
func (a *emailAction) mxHosts(ctx context.Context, domain string) ([]string, *outcome) {
	if domain == "" {
		return nil, &outcome{reason: "the address has no domain"}
	}
	if ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(domain, "["), "]")); ip != nil {
		return []string{ip.String()}, nil
	}
	recs, err := a.lookupMX(ctx, domain)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return []string{domain}, nil
		}
		return nil, &outcome{temporary: true, reason: fmt.Sprintf("MX lookup for %s: %s", domain, oneLine(err.Error()))}
	}
	if len(recs) == 1 && (recs[0].Host == "." || recs[0].Host == "") {
		return nil, &outcome{reason: fmt.Sprintf("%s accepts no mail (null MX record)", domain)}
	}
	if len(recs) == 0 {
		return []string{domain}, nil
	}
	sorted := append([]*net.MX(nil), recs...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Pref < sorted[j].Pref })
	var hosts []string
	for _, mx := range sorted {
		h := strings.TrimSuffix(mx.Host, ".")
		if h == "" || contains(hosts, h) {
			continue
		}
		hosts = append(hosts, h)
		if len(hosts) == maxMXHosts {
			break
		}
	}
	if len(hosts) == 0 {
		return nil, &outcome{reason: fmt.Sprintf("%s has no usable MX record", domain)}
	}
	return hosts, nil
}
