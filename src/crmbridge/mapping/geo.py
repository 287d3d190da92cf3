"""Country names and codes as CRMs store them, normalised to ISO 3166-1 alpha-2, with sales regions."""

from __future__ import annotations

_REGIONS: dict[str, str] = {
    "EMEA": (
        "AT BE BG CH CY CZ DE DK EE ES FI FR GB GR HR HU IE IS IT LI LT LU LV MT NL NO PL PT RO SE SI SK "
        "UA RS TR IL AE SA QA KW BH OM EG MA TN NG KE ZA GH"
    ),
    "NA": "US CA",
    "LATAM": "MX BR AR CL CO PE UY EC VE CR PA DO GT",
    "APAC": "AU NZ JP CN HK TW KR SG MY TH VN PH ID IN PK BD LK",
}
REGION_OF: dict[str, str] = {code: region for region, codes in _REGIONS.items() for code in codes.split()}

_NAMES: dict[str, str] = {
    "austria": "AT", "belgium": "BE", "bulgaria": "BG", "switzerland": "CH", "cyprus": "CY",
    "czech republic": "CZ", "czechia": "CZ", "germany": "DE", "deutschland": "DE", "denmark": "DK",
    "estonia": "EE", "spain": "ES", "finland": "FI", "france": "FR", "united kingdom": "GB", "uk": "GB",
    "great britain": "GB", "england": "GB", "scotland": "GB", "wales": "GB", "greece": "GR", "croatia": "HR",
    "hungary": "HU", "ireland": "IE", "iceland": "IS", "italy": "IT", "liechtenstein": "LI",
    "lithuania": "LT", "luxembourg": "LU", "latvia": "LV", "malta": "MT", "netherlands": "NL",
    "the netherlands": "NL", "holland": "NL", "norway": "NO", "poland": "PL", "portugal": "PT",
    "romania": "RO", "sweden": "SE", "slovenia": "SI", "slovakia": "SK", "ukraine": "UA", "serbia": "RS",
    "turkey": "TR", "türkiye": "TR", "israel": "IL", "united arab emirates": "AE", "uae": "AE",
    "saudi arabia": "SA", "qatar": "QA", "kuwait": "KW", "bahrain": "BH", "oman": "OM", "egypt": "EG",
    "morocco": "MA", "tunisia": "TN", "nigeria": "NG", "kenya": "KE", "south africa": "ZA", "ghana": "GH",
    "united states": "US", "united states of america": "US", "usa": "US", "us": "US", "america": "US",
    "canada": "CA", "mexico": "MX", "brazil": "BR", "argentina": "AR", "chile": "CL", "colombia": "CO",
    "peru": "PE", "uruguay": "UY", "ecuador": "EC", "venezuela": "VE", "costa rica": "CR", "panama": "PA",
    "dominican republic": "DO", "guatemala": "GT", "australia": "AU", "new zealand": "NZ", "japan": "JP",
    "china": "CN", "hong kong": "HK", "taiwan": "TW", "south korea": "KR", "korea": "KR", "singapore": "SG",
    "malaysia": "MY", "thailand": "TH", "vietnam": "VN", "viet nam": "VN", "philippines": "PH",
    "indonesia": "ID", "india": "IN", "pakistan": "PK", "bangladesh": "BD", "sri lanka": "LK",
}


def country_code(text: str) -> str | None:
    """``"Germany"``, ``" de "``, ``"Deutschland"`` → ``"DE"``; an unknown name stays unknown (``None``)."""
    key = " ".join(text.strip().lower().split())
    if key in _NAMES:
        return _NAMES[key]
    if len(key) == 2 and key.isalpha():
        return key.upper()
    return None


def region_of(code: str) -> str | None:
    return REGION_OF.get(code.upper())
