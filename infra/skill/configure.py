#!/usr/bin/env python3
"""Sets what a deployment decides in the skill package's manifest, before `ask deploy`:
the endpoint, its certificate type, and each locale's privacy policy and terms of use.

    python3 infra/skill/configure.py --endpoint https://music.example.org/alexa \\
        --privacy-url https://example.org/privacy --terms-url https://example.org/terms \\
        [--privacy-url de-DE=https://example.org/de/datenschutz] [--certificate wildcard]
    ask deploy --target skill-metadata

A URL given as LOCALE=URL applies to that locale only; a plain URL to every locale the
manifest publishes in. The manifest (intents/skill-package/skill.json unless --package
says otherwise) is rewritten in place, so `git diff` shows what was set.
"""
import argparse
import json
import os
import sys
from urllib.parse import urlparse


def https(url, what):
    parsed = urlparse(url)
    if parsed.scheme != "https" or not parsed.netloc:
        sys.exit(f"{what} must be an https:// URL, not {url!r}")
    return url


def per_locale(values, locales, what):
    """LOCALE=URL and URL arguments -> {locale: url} over `locales`."""
    out = {}
    for value in values or []:
        locale, sep, url = value.partition("=")
        if sep and not locale.startswith("http"):
            if locale not in locales:
                sys.exit(f"{what}: {locale} is not a locale of the manifest ({', '.join(sorted(locales))})")
            out[locale] = https(url, what)
        else:
            for l in locales:
                out.setdefault(l, https(value, what))
    return out


def main():
    parser = argparse.ArgumentParser(
        description="Set the endpoint, certificate type and per-locale policy URLs in the skill manifest.",
        epilog="Run it before `ask deploy --target skill-metadata`.",
    )
    parser.add_argument("--package", default="intents/skill-package", help="the skill package directory")
    parser.add_argument("--endpoint", help="the HTTPS endpoint Alexa calls (the stack's SkillEndpoint output)")
    parser.add_argument(
        "--certificate",
        choices=["trusted", "wildcard"],
        help="the endpoint certificate: trusted (an ACM certificate for the endpoint's own name, the stack's default) "
        "or wildcard (an ACM certificate for *.domain)",
    )
    parser.add_argument("--privacy-url", action="append", metavar="[LOCALE=]URL", help="privacy policy URL")
    parser.add_argument("--terms-url", action="append", metavar="[LOCALE=]URL", help="terms of use URL")
    args = parser.parse_args()

    path = os.path.join(args.package, "skill.json")
    with open(path, encoding="utf-8") as f:
        skill = json.load(f)
    manifest = skill["manifest"]
    locales = set(manifest["publishingInformation"]["locales"])
    endpoint = manifest["apis"]["custom"]["endpoint"]
    if args.endpoint:
        endpoint["uri"] = https(args.endpoint, "--endpoint")
    if args.certificate:
        endpoint["sslCertificateType"] = args.certificate.capitalize()
    privacy = manifest.setdefault("privacyAndCompliance", {}).setdefault("locales", {})
    for key, values, what in (
        ("privacyPolicyUrl", args.privacy_url, "--privacy-url"),
        ("termsOfUseUrl", args.terms_url, "--terms-url"),
    ):
        for locale, url in per_locale(values, locales, what).items():
            privacy.setdefault(locale, {})[key] = url
    missing = [l for l in sorted(locales) if not {"privacyPolicyUrl", "termsOfUseUrl"} <= set(privacy.get(l, {}))]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(skill, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {path}: endpoint {endpoint['uri']} ({endpoint['sslCertificateType']})")
    if missing:
        print(f"warning: no privacy policy or terms of use URL for {', '.join(missing)}", file=sys.stderr)


if __name__ == "__main__":
    main()
