"""The seeded B2B world every connector's sandbox renders into its own vendor's shapes.

One population, deterministic from (seed, number of people, anchor time): companies, people, owners,
pipelines, deals, what people did on the seller's website and with its e-mails (behaviours), and
what sellers did about it (sales activities). It knows no vendor: each plugin's sandbox renders it
(a third-party connector's sandbox can too), and a stable integer index per entity lets sandboxes
render overlapping subsets of the same people, so a test can tell that two CRMs describe one person.

These are seed facts, not a second canonical model: they are never stored or scored as they are, but
reach crmbridge only through a sandbox, its connector and the source's mapping, as real data would.
Where the canonical model has a vocabulary (``LifecycleStage``, ``ActivityKind``) the world uses it;
its other vocabularies (industries, seniorities, departments) are the values the shipped mappings
produce.

Built for 100,000 people in a few seconds: slotted records, shared strings from small pools, and
behaviours stored column-wise in ``array`` buffers rather than one object per event.
"""

from __future__ import annotations

import gc
import math
import random
import unicodedata
import uuid
from array import array
from bisect import bisect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from itertools import accumulate

from crmbridge.model import ActivityKind, LifecycleStage

DAY_MS = 86_400_000
BEHAVIOUR_WINDOW_DAYS = 180

# ---------------------------------------------------------------------------------------------
# Canonical vocabularies
# ---------------------------------------------------------------------------------------------

INDUSTRIES = (
    "software", "it_services", "financial_services", "banking", "insurance", "healthcare", "retail",
    "manufacturing", "education", "marketing", "logistics", "telecom", "government", "nonprofit", "other",
)
SENIORITIES = ("executive", "vp", "director", "manager", "senior", "entry", "intern", "student")
DEPARTMENTS = ("sales", "marketing", "it", "engineering", "finance", "operations", "hr", "executive",
               "education", "other")
LEAD_STATUSES = ("new", "open", "in_progress", "open_deal", "unqualified", "attempted_to_contact",
                 "connected", "bad_timing")
REGIONS = ("EMEA", "NA", "APAC", "LATAM")
TIERS = ("tier_1", "tier_2", "tier_3")

BANT_BUDGET = ("approved", "planned", "none")
BANT_AUTHORITY = ("decision_maker", "influencer", "none")
BANT_NEED = ("confirmed", "exploring", "none")
BANT_TIMELINE = ("this_quarter", "this_year", "later", "none")
PROJECT_STATUSES = ("current", "researching", "not_relevant")

FREE_MAIL_DOMAINS = ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "gmx.de", "web.de")
# Companies selling what the seller sells: their people read the seller's content, never buy.
COMPETITOR_DOMAINS = ("leadlift.example", "pipelinepilot.example", "scorewise.example", "funnelforge.example")
COMPETITOR_NAMES = ("LeadLift", "PipelinePilot", "ScoreWise", "FunnelForge")

# What companies run; the CRMs among them (the first three) are the ones a seller integrates with.
TECHNOLOGIES = (
    "salesforce", "zoho-crm", "dynamics-365", "marketo", "pardot", "google-analytics", "aws", "azure", "gcp",
    "snowflake", "slack", "microsoft-teams", "zendesk", "shopify", "sap", "oracle", "wordpress", "segment",
    "stripe", "intercom", "zoom", "jira", "tableau", "looker",
)

BEHAVIOUR_KINDS = (ActivityKind.PAGE_VIEW, ActivityKind.FORM_SUBMISSION, ActivityKind.EMAIL_OPEN,
                   ActivityKind.EMAIL_CLICK)
PAGE_VIEW, FORM_SUBMISSION, EMAIL_OPEN, EMAIL_CLICK = range(4)

CALL_DIRECTIONS = ("inbound", "outbound")
CALL_STATUSES = ("completed", "no_answer", "busy", "failed", "canceled")
MEETING_OUTCOMES = ("scheduled", "completed", "rescheduled", "no_show", "canceled")
TASK_STATUSES = ("not_started", "in_progress", "waiting", "completed", "deferred")
TASK_TYPES = ("call", "email", "todo")
TASK_PRIORITIES = ("low", "medium", "high", "none")


@dataclass(frozen=True, slots=True)
class Country:
    code: str  # ISO 3166-1 alpha-2
    name: str
    region: str
    phone_code: int
    tld: str
    cities: tuple[tuple[str, str], ...]  # (city, state or province)
    names: str  # which name pool people there are drawn from
    weight: float


COUNTRIES: tuple[Country, ...] = (
    Country("US", "United States", "NA", 1, "com", (
        ("New York", "New York"), ("San Francisco", "California"), ("Austin", "Texas"), ("Chicago", "Illinois"),
        ("Boston", "Massachusetts"), ("Seattle", "Washington"), ("Atlanta", "Georgia"), ("Denver", "Colorado"),
    ), "anglo", 28),
    Country("CA", "Canada", "NA", 1, "ca", (
        ("Toronto", "Ontario"), ("Vancouver", "British Columbia"), ("Montreal", "Quebec"),
    ), "anglo", 4),
    Country("GB", "United Kingdom", "EMEA", 44, "co.uk", (
        ("London", "England"), ("Manchester", "England"), ("Edinburgh", "Scotland"), ("Bristol", "England"),
    ), "anglo", 10),
    Country("IE", "Ireland", "EMEA", 353, "ie", (("Dublin", "Leinster"), ("Cork", "Munster")), "anglo", 2),
    Country("DE", "Germany", "EMEA", 49, "de", (
        ("Berlin", "Berlin"), ("Munich", "Bavaria"), ("Hamburg", "Hamburg"), ("Frankfurt", "Hesse"),
        ("Cologne", "North Rhine-Westphalia"), ("Stuttgart", "Baden-Württemberg"),
    ), "german", 13),
    Country("AT", "Austria", "EMEA", 43, "at", (("Vienna", "Vienna"), ("Graz", "Styria")), "german", 2),
    Country("CH", "Switzerland", "EMEA", 41, "ch", (("Zurich", "Zurich"), ("Basel", "Basel-Stadt")), "german", 2),
    Country("FR", "France", "EMEA", 33, "fr", (
        ("Paris", "Île-de-France"), ("Lyon", "Auvergne-Rhône-Alpes"), ("Toulouse", "Occitanie"),
    ), "french", 5),
    Country("NL", "Netherlands", "EMEA", 31, "nl", (
        ("Amsterdam", "North Holland"), ("Rotterdam", "South Holland"), ("Utrecht", "Utrecht"),
    ), "nordic", 4),
    Country("SE", "Sweden", "EMEA", 46, "se", (("Stockholm", "Stockholm"), ("Gothenburg", "Västra Götaland")),
            "nordic", 2),
    Country("ES", "Spain", "EMEA", 34, "es", (("Madrid", "Madrid"), ("Barcelona", "Catalonia")), "iberian", 3),
    Country("IT", "Italy", "EMEA", 39, "it", (("Milan", "Lombardy"), ("Rome", "Lazio")), "italian", 2),
    Country("PL", "Poland", "EMEA", 48, "pl", (("Warsaw", "Masovia"), ("Kraków", "Lesser Poland")), "polish", 2),
    Country("AU", "Australia", "APAC", 61, "com.au", (
        ("Sydney", "New South Wales"), ("Melbourne", "Victoria"), ("Brisbane", "Queensland"),
    ), "anglo", 4),
    Country("SG", "Singapore", "APAC", 65, "sg", (("Singapore", "Singapore"),), "anglo", 2),
    Country("IN", "India", "APAC", 91, "in", (("Bengaluru", "Karnataka"), ("Mumbai", "Maharashtra")), "indian", 3),
    Country("JP", "Japan", "APAC", 81, "jp", (("Tokyo", "Tokyo"), ("Osaka", "Osaka")), "japanese", 1),
    Country("BR", "Brazil", "LATAM", 55, "com.br", (
        ("São Paulo", "São Paulo"), ("Rio de Janeiro", "Rio de Janeiro"),
    ), "iberian", 3),
    Country("MX", "Mexico", "LATAM", 52, "mx", (("Mexico City", "Mexico City"), ("Monterrey", "Nuevo León")),
            "iberian", 2),
    Country("AR", "Argentina", "LATAM", 54, "com.ar", (("Buenos Aires", "Buenos Aires"),), "iberian", 1),
)
COUNTRY_BY_CODE = {c.code: c for c in COUNTRIES}
COUNTRY_NAMES = {c.code: c.name for c in COUNTRIES}

_NAME_POOLS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "anglo": (
        ("James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William", "Elizabeth",
         "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
         "Christopher", "Nancy", "Daniel", "Lisa", "Matthew", "Emily", "Anthony", "Margaret", "Mark", "Sandra",
         "Olivia", "Liam", "Noah", "Emma", "Ava", "Sophia", "Jacob", "Ethan", "Chloe", "Grace", "Ryan", "Kevin",
         "Laura", "Rachel", "Brian", "Megan", "Sean", "Hannah", "Owen", "Zoe"),
        ("Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson", "Taylor",
         "Thomas", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris", "Clark", "Lewis",
         "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Hill", "Green", "Adams", "Baker",
         "Nelson", "Carter", "Mitchell", "Roberts", "Turner", "Phillips", "Campbell", "Parker", "Evans",
         "Edwards", "Collins", "Stewart", "Murphy", "Cook", "Rogers", "Morgan", "Cooper", "Reed", "Bailey",
         "Bell", "Kelly", "Howard", "Ward", "Cox", "Richardson", "Wood", "Watson", "Brooks", "Bennett", "Gray",
         "Hughes", "Price", "Sanders", "Myers", "Long", "Ross", "Foster", "O'Brien", "Chen"),
    ),
    "german": (
        ("Lukas", "Leon", "Finn", "Jonas", "Felix", "Maximilian", "Paul", "Julia", "Anna", "Lena", "Laura", "Lea",
         "Sophie", "Marie", "Hannah", "Katharina", "Stefan", "Thomas", "Andreas", "Michael", "Sabine", "Claudia",
         "Jürgen", "Uwe", "Jan", "Tobias", "Florian", "Sebastian", "Johanna", "Clara", "Jörg", "Bärbel"),
        ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
         "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann",
         "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner", "Krause", "Meier", "Lehmann",
         "Weiß", "Groß"),
    ),
    "french": (
        ("Camille", "Léa", "Manon", "Chloé", "Louis", "Hugo", "Lucas", "Jules", "Nathan", "Inès", "Sarah",
         "Julien", "Nicolas", "Pierre", "Antoine", "Élodie", "Mathilde", "Thomas", "Claire", "Émilie"),
        ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
         "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier"),
    ),
    "iberian": (
        ("José", "María", "Carlos", "Ana", "Luis", "Lucía", "Javier", "Sofía", "Miguel", "Carmen", "Pablo",
         "Elena", "Diego", "Laura", "Alejandro", "Paula", "João", "Mariana", "Pedro", "Beatriz", "Gabriel",
         "Rafael", "Fernanda", "Camila"),
        ("García", "Rodríguez", "González", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Gómez",
         "Martín", "Silva", "Santos", "Oliveira", "Souza", "Costa", "Pereira", "Alves", "Ribeiro", "Hernández",
         "Díaz", "Torres", "Ramírez", "Flores", "Castro"),
    ),
    "italian": (
        ("Marco", "Giulia", "Luca", "Francesca", "Alessandro", "Chiara", "Matteo", "Sara", "Andrea", "Valentina",
         "Giorgio", "Elisa"),
        ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Marino", "Greco",
         "Bruno", "Gallo"),
    ),
    "nordic": (
        ("Lars", "Anders", "Erik", "Ingrid", "Astrid", "Sven", "Daan", "Sem", "Lotte", "Sanne", "Emma", "Mila",
         "Bram", "Thijs", "Freja", "Oskar"),
        ("Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "de Jong", "Jansen", "de Vries",
         "van den Berg", "Bakker", "Visser", "Smit", "Meijer", "Lindqvist", "Bergström"),
    ),
    "polish": (
        ("Jakub", "Anna", "Piotr", "Katarzyna", "Tomasz", "Magdalena", "Kamil", "Agnieszka", "Michał", "Zofia"),
        ("Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kowalczyk", "Kamiński", "Lewandowski", "Zieliński",
         "Szymański", "Dąbrowski"),
    ),
    "indian": (
        ("Aarav", "Vivaan", "Aditya", "Priya", "Ananya", "Diya", "Rohan", "Arjun", "Kavya", "Neha", "Rahul",
         "Sneha", "Vikram", "Pooja"),
        ("Sharma", "Patel", "Singh", "Kumar", "Gupta", "Reddy", "Iyer", "Nair", "Mehta", "Rao", "Joshi", "Das"),
    ),
    "japanese": (
        ("Haruto", "Yui", "Sota", "Hina", "Ren", "Aoi", "Yuto", "Sakura", "Kenji", "Yuki"),
        ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura", "Kobayashi", "Kato"),
    ),
}

# (title, seniority, department, weight) for people at ordinary companies.
TITLES: tuple[tuple[str, str, str, float], ...] = (
    ("CEO", "executive", "executive", 1.6), ("Founder & CEO", "executive", "executive", 0.6),
    ("CFO", "executive", "finance", 0.8), ("CTO", "executive", "engineering", 0.8),
    ("CMO", "executive", "marketing", 0.8), ("Chief Revenue Officer", "executive", "sales", 0.5),
    ("COO", "executive", "operations", 0.5),
    ("VP Sales", "vp", "sales", 1.4), ("VP Marketing", "vp", "marketing", 1.4),
    ("VP Engineering", "vp", "engineering", 0.9), ("VP Operations", "vp", "operations", 0.6),
    ("VP Finance", "vp", "finance", 0.4),
    ("Head of Marketing", "director", "marketing", 2.0), ("Head of Sales", "director", "sales", 2.0),
    ("IT Director", "director", "it", 1.5), ("Director of Demand Generation", "director", "marketing", 1.0),
    ("Head of Revenue Operations", "director", "operations", 1.0), ("Finance Director", "director", "finance", 0.8),
    ("HR Director", "director", "hr", 0.6), ("Head of Engineering", "director", "engineering", 1.0),
    ("Marketing Manager", "manager", "marketing", 4.0), ("Sales Manager", "manager", "sales", 3.0),
    ("Marketing Operations Manager", "manager", "marketing", 2.0), ("IT Manager", "manager", "it", 2.0),
    ("Product Manager", "manager", "engineering", 2.0), ("Operations Manager", "manager", "operations", 2.0),
    ("Account Manager", "manager", "sales", 2.0), ("HR Manager", "manager", "hr", 1.0),
    ("Finance Manager", "manager", "finance", 1.0),
    ("Senior Software Engineer", "senior", "engineering", 3.0), ("Senior Account Executive", "senior", "sales", 2.0),
    ("Senior Marketing Specialist", "senior", "marketing", 2.0), ("Senior Data Analyst", "senior", "it", 1.5),
    ("Senior Accountant", "senior", "finance", 1.0),
    ("Sales Rep", "entry", "sales", 4.0), ("Engineer", "entry", "engineering", 4.0),
    ("Marketing Specialist", "entry", "marketing", 3.0),
    ("Sales Development Representative", "entry", "sales", 3.0),
    ("Customer Success Specialist", "entry", "operations", 2.0), ("Accountant", "entry", "finance", 1.5),
    ("HR Generalist", "entry", "hr", 1.0), ("Office Administrator", "entry", "other", 1.0),
    ("Consultant", "entry", "other", 1.5), ("Data Analyst", "entry", "it", 1.5),
    ("Marketing Intern", "intern", "marketing", 1.5), ("Sales Intern", "intern", "sales", 0.7),
    ("Engineering Intern", "intern", "engineering", 0.7),
)
UNIVERSITY_TITLES: tuple[tuple[str, str, str, float], ...] = (
    ("Student", "student", "education", 14.0), ("PhD Student", "student", "education", 3.0),
    ("Professor", "senior", "education", 2.0), ("Research Assistant", "entry", "education", 2.0),
    ("IT Director", "director", "it", 0.5), ("Head of Procurement", "director", "finance", 0.4),
)

_INDUSTRY_WEIGHTS = {
    "software": 18, "it_services": 10, "financial_services": 7, "banking": 4, "insurance": 4, "healthcare": 8,
    "retail": 8, "manufacturing": 12, "marketing": 7, "logistics": 6, "telecom": 4, "government": 3,
    "nonprofit": 3, "other": 6,
}
_INDUSTRY_WORDS = {
    "software": ("Software", "Labs", "Systems", "Cloud"), "it_services": ("IT Services", "Consulting", "Digital"),
    "financial_services": ("Capital", "Finance", "Advisors"), "banking": ("Bank", "Banking Group"),
    "insurance": ("Insurance", "Assurance"), "healthcare": ("Health", "Medical", "Clinics"),
    "retail": ("Retail", "Stores", "Outfitters"), "manufacturing": ("Manufacturing", "Industries", "Components"),
    "marketing": ("Marketing", "Media", "Creative"), "logistics": ("Logistics", "Freight", "Shipping"),
    "telecom": ("Telecom", "Networks"), "government": ("Agency", "Authority"),
    "nonprofit": ("Foundation", "Trust"), "other": ("Group", "Partners", "Holdings"),
}
_LEGAL = {"US": "Inc.", "CA": "Inc.", "GB": "Ltd", "IE": "Ltd", "DE": "GmbH", "AT": "GmbH", "CH": "AG",
          "FR": "SAS", "NL": "B.V.", "SE": "AB", "ES": "S.L.", "IT": "S.r.l.", "PL": "Sp. z o.o.", "AU": "Pty Ltd",
          "SG": "Pte Ltd", "IN": "Pvt Ltd", "JP": "K.K.", "BR": "Ltda.", "MX": "S.A. de C.V.", "AR": "S.A."}
_NAME_HEADS = (
    "Blue", "North", "Bright", "Silver", "Iron", "Clear", "Green", "Red", "Summit", "Harbor", "Pioneer",
    "Atlas", "Nova", "Vertex", "Apex", "Quantum", "Stellar", "Evergreen", "Granite", "Cedar", "Maple", "Falcon",
    "Orion", "Polar", "Crystal", "Golden", "Swift", "Bold", "True", "Prime", "Alpine", "Coastal", "Urban",
    "Open", "Deep", "Wild", "Solid", "Rapid", "Lunar", "Solar", "Oak", "Willow", "River", "Stone", "Sky",
    "Ember", "Copper", "Indigo", "Hyper", "Zenith", "Echo", "Beacon", "Kestrel", "Meridian", "Aurora",
    "Cobalt", "Delta", "Fjord", "Glacier", "Horizon",
)
_NAME_TAILS = (
    "wave", "field", "stone", "bridge", "point", "line", "works", "gate", "path", "peak", "forge", "leaf",
    "light", "view", "core", "scale", "span", "ridge", "brook", "wood", "mark", "well", "haven", "port",
    "crest", "shore", "side", "vale", "wind", "spring", "star", "track", "yard", "bay", "craft", "loop",
    "shift", "stack", "sphere", "grid",
)


@lru_cache(maxsize=4096)
def _ascii_slug(text: str) -> str:
    """Lower-case ASCII for e-mail local parts and domains (German umlauts as ae/oe/ue, as people write them)."""
    text = text.lower()
    for src, dst in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss"), ("ł", "l"), ("ø", "o"), ("å", "a")):
        text = text.replace(src, dst)
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if ch.isascii() and ch.isalnum())


# ---------------------------------------------------------------------------------------------
# The seller's marketing assets: pages, forms, e-mail campaigns
# ---------------------------------------------------------------------------------------------

SELLER_NAME = "Lumen Analytics"
SELLER_DOMAIN = "lumenanalytics.example"
SELLER_SITE = f"https://www.{SELLER_DOMAIN}"


@dataclass(frozen=True, slots=True)
class Page:
    index: int
    url: str
    title: str
    section: str  # home, pricing, product, blog, customers, careers, resources, contact


@dataclass(frozen=True, slots=True)
class Form:
    index: int
    guid: str
    name: str
    kind: str  # contact, demo, newsletter, webinar, guide, buyers_guide, ebook, case_study
    page: int  # the landing page it sits on
    created_ms: int


@dataclass(frozen=True, slots=True)
class Campaign:
    index: int
    id: int
    name: str
    subject: str
    click_page: int
    sent_ms: int


_PAGES: tuple[tuple[str, str, str], ...] = (
    ("/", "Lumen Analytics | Revenue operations on autopilot", "home"),
    ("/pricing", "Pricing | Lumen Analytics", "pricing"),
    ("/product/lead-scoring", "Lead scoring | Lumen Analytics", "product"),
    ("/product/lead-routing", "Lead routing | Lumen Analytics", "product"),
    ("/product/sla-tracking", "Response-time SLA tracking | Lumen Analytics", "product"),
    ("/product/abm", "Account-based marketing | Lumen Analytics", "product"),
    ("/product/integrations", "Integrations | Lumen Analytics", "product"),
    ("/blog/what-is-an-mql", "What is an MQL, really? | Lumen blog", "blog"),
    ("/blog/lead-scoring-models", "Five lead scoring models compared | Lumen blog", "blog"),
    ("/blog/speed-to-lead", "Speed to lead: why the first hour matters | Lumen blog", "blog"),
    ("/blog/icp-workshop", "Running an ICP workshop | Lumen blog", "blog"),
    ("/blog/bant-is-not-dead", "BANT is not dead | Lumen blog", "blog"),
    ("/blog/buying-committees", "Mapping the buying committee | Lumen blog", "blog"),
    ("/blog/revops-metrics", "Ten RevOps metrics that matter | Lumen blog", "blog"),
    ("/customers/northgate-logistics", "Northgate Logistics cut response time by 60% | Lumen", "customers"),
    ("/customers/helix-insurance", "Helix Insurance doubled SQL conversion | Lumen", "customers"),
    ("/customers/brightpath-software", "Brightpath Software aligned sales and marketing | Lumen", "customers"),
    ("/careers/account-executive", "Account Executive, EMEA | Careers at Lumen", "careers"),
    ("/careers/software-engineer", "Software Engineer | Careers at Lumen", "careers"),
    ("/careers/marketing-intern", "Marketing Intern | Careers at Lumen", "careers"),
    ("/contact", "Contact us | Lumen Analytics", "contact"),
    ("/demo", "Request a demo | Lumen Analytics", "contact"),
    ("/newsletter", "Newsletter | Lumen Analytics", "resources"),
    ("/webinars/scoring-that-sales-trusts", "Webinar: Scoring that sales trusts | Lumen", "resources"),
    ("/resources/guide-lead-scoring-101", "Guide: Lead scoring 101 | Lumen", "resources"),
    ("/resources/guide-building-your-icp", "Guide: Building your ICP | Lumen", "resources"),
    ("/resources/guide-mql-to-sql-handoff", "Guide: The MQL to SQL hand-off | Lumen", "resources"),
    ("/resources/buyers-guide-revops-platforms", "Buyer's guide: RevOps platforms | Lumen", "resources"),
    ("/resources/buyers-guide-lead-routing", "Buyer's guide: Lead routing software | Lumen", "resources"),
    ("/resources/ebook-revops-playbook", "Ebook: The RevOps playbook | Lumen", "resources"),
    ("/resources/ebook-abm-for-b2b", "Ebook: ABM for B2B teams | Lumen", "resources"),
    ("/resources/case-study-northgate", "Case study: Northgate Logistics | Lumen", "resources"),
)
# (name, kind, landing page path)
_FORMS: tuple[tuple[str, str, str], ...] = (
    ("Contact us", "contact", "/contact"),
    ("Request a demo", "demo", "/demo"),
    ("Newsletter signup", "newsletter", "/newsletter"),
    ("Webinar registration", "webinar", "/webinars/scoring-that-sales-trusts"),
    ("Guide: Lead scoring 101", "guide", "/resources/guide-lead-scoring-101"),
    ("Guide: Building your ICP", "guide", "/resources/guide-building-your-icp"),
    ("Guide: The MQL to SQL hand-off", "guide", "/resources/guide-mql-to-sql-handoff"),
    ("Buyer's guide: Choosing a RevOps platform", "buyers_guide", "/resources/buyers-guide-revops-platforms"),
    ("Buyer's guide: Lead routing software", "buyers_guide", "/resources/buyers-guide-lead-routing"),
    ("Ebook: The RevOps playbook", "ebook", "/resources/ebook-revops-playbook"),
    ("Ebook: ABM for B2B teams", "ebook", "/resources/ebook-abm-for-b2b"),
    ("Case study: Northgate Logistics", "case_study", "/resources/case-study-northgate"),
)
# (campaign name, subject, page clicked)
_CAMPAIGNS: tuple[tuple[str, str, str], ...] = (
    ("Newsletter - January", "Five scoring mistakes we keep seeing", "/blog/lead-scoring-models"),
    ("Newsletter - February", "Speed to lead, measured", "/blog/speed-to-lead"),
    ("Newsletter - March", "Is BANT dead? (No.)", "/blog/bant-is-not-dead"),
    ("Newsletter - April", "Who is really in the buying committee?", "/blog/buying-committees"),
    ("Webinar invite - Scoring that sales trusts", "Join us: scoring that sales trusts",
     "/webinars/scoring-that-sales-trusts"),
    ("Guide promo - Lead scoring 101", "Your free guide: lead scoring 101", "/resources/guide-lead-scoring-101"),
    ("Guide promo - ICP", "Build your ICP in one afternoon", "/resources/guide-building-your-icp"),
    ("Buyer's guide promo", "Comparing RevOps platforms? Read this first",
     "/resources/buyers-guide-revops-platforms"),
    ("Product launch - SLA tracking", "New: response-time SLAs your managers can read", "/product/sla-tracking"),
    ("Pricing update", "Simpler pricing for growing teams", "/pricing"),
    ("Case study - Northgate", "How Northgate cut response time by 60%", "/customers/northgate-logistics"),
    ("Event follow-up", "Thanks for stopping by our booth", "/demo"),
)


# ---------------------------------------------------------------------------------------------
# Entities
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Team:
    index: int
    name: str


@dataclass(frozen=True, slots=True)
class Owner:
    index: int
    first_name: str
    last_name: str
    email: str
    timezone: str
    team: int
    active: bool
    created_ms: int


@dataclass(frozen=True, slots=True)
class Stage:
    key: str
    label: str
    probability: float
    closed: bool
    won: bool


@dataclass(frozen=True, slots=True)
class Pipeline:
    index: int
    key: str
    label: str
    stages: tuple[Stage, ...]


@dataclass(slots=True)
class Company:
    index: int
    name: str
    domain: str
    industry: str
    employees: int
    annual_revenue: int
    country: str
    city: str
    state: str
    region: str
    technologies: tuple[str, ...]
    tier: str | None
    renewal_date: date | None
    owner: int  # owner index, -1 when unassigned
    lifecycle: LifecycleStage
    created_ms: int
    updated_ms: int
    is_university: bool = False
    is_competitor: bool = False
    people: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Person:
    index: int
    first_name: str
    last_name: str
    email: str
    title: str
    seniority: str
    department: str
    phone: str | None
    country: str
    city: str
    region: str
    company: int  # company index, -1 for people without one
    lifecycle: LifecycleStage
    lead_status: str | None
    unsubscribed: bool
    bounced: bool
    bant_budget: str | None
    bant_authority: str | None
    bant_need: str | None
    bant_timeline: str | None
    project_status: str | None
    owner: int
    created_ms: int
    updated_ms: int


@dataclass(slots=True)
class Deal:
    index: int
    name: str
    amount: int
    currency: str
    pipeline: int
    stage: int  # index into the pipeline's stages
    close_date: date
    company: int
    people: tuple[int, ...]
    owner: int
    created_ms: int
    updated_ms: int


@dataclass(slots=True)
class SalesActivity:
    """Something a seller did (or a lead answered), on a person, a company and/or a deal."""

    index: int
    kind: ActivityKind  # call, email_sent, email_reply, meeting, note, task
    at_ms: int
    owner: int
    person: int
    company: int
    deal: int
    subject: str
    body: str
    direction: str | None = None  # calls: inbound/outbound
    status: str | None = None  # call status, task status, e-mail status
    duration_ms: int = 0  # calls; meetings' length
    outcome: str | None = None  # meetings
    booked_by_lead: bool = False  # meetings booked on the seller's scheduling page
    task_type: str | None = None
    priority: str | None = None
    completed_ms: int | None = None  # tasks
    created_ms: int = 0
    updated_ms: int = 0


@dataclass(slots=True)
class Behaviours:
    """What people did, column-wise; a person's events are ``start[p]:start[p+1]``, oldest first."""

    person: array  # 'i'
    kind: array  # 'b': PAGE_VIEW, FORM_SUBMISSION, EMAIL_OPEN, EMAIL_CLICK
    at_ms: array  # 'q'
    ref: array  # 'h': page index, form index, or campaign index
    start: array  # 'i', len(people) + 1

    def __len__(self) -> int:
        return len(self.at_ms)

    def of(self, person: int) -> range:
        return range(self.start[person], self.start[person + 1])


@dataclass(slots=True)
class World:
    seed: int
    size: int
    anchor: datetime
    teams: list[Team]
    owners: list[Owner]
    pipelines: list[Pipeline]
    companies: list[Company]
    people: list[Person]
    deals: list[Deal]
    activities: list[SalesActivity]
    behaviours: Behaviours
    pages: list[Page]
    forms: list[Form]
    campaigns: list[Campaign]

    @property
    def anchor_ms(self) -> int:
        return int(self.anchor.timestamp() * 1000)


# ---------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------


def default_anchor(now: datetime | None = None) -> datetime:
    """Today at 00:00 UTC: data generated twice on the same day is identical."""
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def parse_anchor(value: object) -> datetime | None:
    """An anchor from configuration: a datetime, a date, epoch milliseconds, or ISO 8601 text."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, UTC)
    text = str(value).strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Building hundreds of thousands of long-lived objects triggers the cycle collector over and over
    for nothing (they form no cycles); pausing it makes a large build about a quarter faster."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@lru_cache(maxsize=2)
def _cached(seed: int, contacts: int, anchor_ms: int) -> World:
    with paused_gc():
        return _Generator(seed, contacts, datetime.fromtimestamp(anchor_ms / 1000, UTC)).run()


def generate_world(seed: int = 42, contacts: int = 1000, anchor: datetime | None = None) -> World:
    """The world for (seed, contacts, anchor); the last two are cached so vendor sandboxes share one."""
    if contacts < 1:
        raise ValueError("a world needs at least one person")
    anchor = (anchor or default_anchor()).astimezone(UTC)
    return _cached(seed, contacts, int(anchor.timestamp() * 1000))


def _weighted(items: Sequence, weight_at: int | str) -> tuple[list, list[float]]:
    if isinstance(weight_at, str):
        return list(items), list(accumulate(getattr(item, weight_at) for item in items))
    return list(items), list(accumulate(item[weight_at] for item in items))


class _Generator:
    """One pass per entity kind, each with its own random stream so changing one keeps the others."""

    def __init__(self, seed: int, size: int, anchor: datetime) -> None:
        self.seed = seed
        self.size = size
        self.anchor = anchor
        self.anchor_ms = int(anchor.timestamp() * 1000)

    def rng(self, part: str) -> random.Random:
        return random.Random(f"crmbridge-world:{self.seed}:{part}")

    def run(self) -> World:
        pages, forms, campaigns = self.assets()
        teams, owners = self.owners()
        pipelines = self.pipelines()
        companies = self.companies(owners, teams)
        people = self.people(companies, owners)
        deals = self.deals(companies, people, owners, pipelines)
        behaviours = self.behaviours(people, companies, pages, forms, campaigns)
        activities = self.activities(people, companies, deals, owners, behaviours)
        self.finish_timestamps(people, companies, behaviours, activities)
        return World(self.seed, self.size, self.anchor, teams, owners, pipelines, companies, people, deals,
                     activities, behaviours, pages, forms, campaigns)

    # -- assets --------------------------------------------------------------------------------

    def assets(self) -> tuple[list[Page], list[Form], list[Campaign]]:
        rng = self.rng("assets")
        pages = [Page(i, SELLER_SITE + path, title, section) for i, (path, title, section) in enumerate(_PAGES)]
        by_path = {p.url[len(SELLER_SITE):]: p.index for p in pages}
        forms = [
            Form(i, str(uuid.UUID(int=rng.getrandbits(128), version=4)), name, kind, by_path[path],
                 self.anchor_ms - rng.randint(200, 700) * DAY_MS)
            for i, (name, kind, path) in enumerate(_FORMS)
        ]
        campaigns = []
        for i, (name, subject, path) in enumerate(_CAMPAIGNS):
            sent = self.anchor_ms - (BEHAVIOUR_WINDOW_DAYS - 15 * i) * DAY_MS + rng.randint(0, 5) * DAY_MS
            campaigns.append(Campaign(i, 100_000_000 + rng.randint(0, 899_999_999), name, subject, by_path[path],
                                      min(sent, self.anchor_ms - DAY_MS)))
        return pages, forms, campaigns

    # -- owners and pipelines -------------------------------------------------------------------

    def owners(self) -> tuple[list[Team], list[Owner]]:
        teams = [Team(i, name) for i, name in
                 enumerate(("EMEA Sales", "NA Sales", "APAC Sales", "LATAM Sales", "SDR"))]
        spec = (
            ("Anna", "Schneider", "Europe/Berlin", 0, True), ("Tom", "Becker", "Europe/Berlin", 0, True),
            ("Claire", "Dubois", "Europe/Paris", 0, True), ("Jessica", "Miller", "America/New_York", 1, True),
            ("Marcus", "Reed", "America/Chicago", 1, True), ("Emily", "Chen", "America/Los_Angeles", 1, True),
            ("Priya", "Nair", "Asia/Singapore", 2, True), ("Lucas", "Oliveira", "America/Sao_Paulo", 3, True),
            ("Sam", "Taylor", "America/New_York", 4, True), ("Nina", "Kowalski", "Europe/Warsaw", 4, True),
            ("Daniel", "Frost", "Europe/London", 0, False), ("Rachel", "Green", "America/Denver", 1, False),
        )
        rng = self.rng("owners")
        owners = [
            Owner(i, first, last, f"{_ascii_slug(first)}.{_ascii_slug(last)}@{SELLER_DOMAIN}", tz, team, active,
                  self.anchor_ms - rng.randint(400, 1500) * DAY_MS)
            for i, (first, last, tz, team, active) in enumerate(spec)
        ]
        return teams, owners

    def pipelines(self) -> list[Pipeline]:
        sales = (
            Stage("appointment_scheduled", "Appointment Scheduled", 0.2, False, False),
            Stage("qualified_to_buy", "Qualified To Buy", 0.4, False, False),
            Stage("presentation_scheduled", "Presentation Scheduled", 0.6, False, False),
            Stage("decision_maker_bought_in", "Decision Maker Bought-In", 0.8, False, False),
            Stage("contract_sent", "Contract Sent", 0.9, False, False),
            Stage("closed_won", "Closed Won", 1.0, True, True),
            Stage("closed_lost", "Closed Lost", 0.0, True, False),
        )
        renewals = (
            Stage("renewal_due", "Renewal Due", 0.5, False, False),
            Stage("renewal_negotiation", "Negotiation", 0.7, False, False),
            Stage("renewed", "Renewed", 1.0, True, True),
            Stage("churned", "Churned", 0.0, True, False),
        )
        return [Pipeline(0, "sales", "Sales Pipeline", sales), Pipeline(1, "renewals", "Renewals", renewals)]

    # -- companies ------------------------------------------------------------------------------

    def companies(self, owners: list[Owner], teams: list[Team]) -> list[Company]:
        rng = self.rng("companies")
        count = max(10, self.size // 6)
        n_universities = max(1, round(count * 0.03))
        countries, country_cum = _weighted(COUNTRIES, "weight")
        industries = list(_INDUSTRY_WEIGHTS)
        industry_cum = list(accumulate(_INDUSTRY_WEIGHTS.values()))
        team_owners = {t.index: [o.index for o in owners if o.team == t.index and o.active] for t in teams}
        region_team = {"EMEA": 0, "NA": 1, "APAC": 2, "LATAM": 3}
        domains: set[str] = set()
        out: list[Company] = []
        special = ["competitor"] * len(COMPETITOR_DOMAINS) + ["university"] * n_universities
        kinds = special + ["company"] * max(0, count - len(special))
        # Spread the special companies through the index range instead of bunching them at the start.
        rng.shuffle(kinds)
        competitor_i = 0
        anchor = self.anchor_ms
        for index, kind in enumerate(kinds):
            country = countries[bisect(country_cum, rng.random() * country_cum[-1])]
            city, state = country.cities[rng.randrange(len(country.cities))]
            if kind == "competitor":
                name = COMPETITOR_NAMES[competitor_i]
                domain = COMPETITOR_DOMAINS[competitor_i]
                competitor_i += 1
                industry, employees = "software", rng.randint(80, 900)
            elif kind == "university":
                name, domain = self._university_name(rng, city, country, domains)
                industry, employees = "education", rng.randint(1500, 25_000)
            else:
                industry = industries[bisect(industry_cum, rng.random() * industry_cum[-1])]
                name, domain = self._company_name(rng, industry, country, domains)
                # Log-normal head count: a median around 100, a few too small (<10) and a few huge ones.
                employees = max(1, min(250_000, int(math.exp(rng.gauss(4.6, 1.7)))))
            domains.add(domain)
            revenue = int(employees * rng.uniform(60_000, 350_000) / 1000) * 1000
            techs = tuple(sorted(rng.sample(TECHNOLOGIES, rng.choice((0, 1, 2, 2, 3, 3, 4, 5, 6)))))
            tier = None
            if kind == "company" and 50 <= employees <= 20_000:
                draw = rng.random()
                tier = "tier_1" if draw < 0.06 else "tier_2" if draw < 0.16 else "tier_3" if draw < 0.30 else None
            owner = -1
            if rng.random() < 0.7 or tier:
                pool = team_owners[region_team[country.region]] or team_owners[0]
                owner = pool[rng.randrange(len(pool))]
            renewal = None
            if rng.random() < 0.12:
                renewal = (self.anchor + timedelta(days=rng.randint(-60, 365))).date()
            created = anchor - rng.randint(200, 1100) * DAY_MS - rng.randint(0, DAY_MS)
            out.append(Company(index, name, domain, industry, employees, revenue, country.code, city, state,
                               country.region, techs, tier, renewal, owner, LifecycleStage.LEAD, created, created,
                               is_university=kind == "university", is_competitor=kind == "competitor"))
        return out

    @staticmethod
    def _company_name(rng: random.Random, industry: str, country: Country, taken: set[str]) -> tuple[str, str]:
        for attempt in range(50):
            head = _NAME_HEADS[rng.randrange(len(_NAME_HEADS))]
            tail = _NAME_TAILS[rng.randrange(len(_NAME_TAILS))]
            word = rng.choice(_INDUSTRY_WORDS[industry])
            base = head + tail
            domain_base = _ascii_slug(base) + ("" if rng.random() < 0.5 else "-" + _ascii_slug(word.split()[0]))
            if attempt >= 10:
                domain_base += str(attempt)
            domain = f"{domain_base}.{country.tld}"
            if domain not in taken:
                return f"{base} {word} {_LEGAL[country.code]}", domain
        raise RuntimeError("could not find a free company domain")  # pragma: no cover

    @staticmethod
    def _university_name(rng: random.Random, city: str, country: Country, taken: set[str]) -> tuple[str, str]:
        slug = _ascii_slug(city)
        styles = (
            (f"University of {city}", {"GB": f"{slug}.ac.uk", "US": f"{slug}.edu", "DE": f"uni-{slug}.de"}),
            (f"{city} Institute of Technology", {"US": f"{slug}tech.edu", "DE": f"tu-{slug}.de"}),
            (f"{city} School of Business", {"GB": f"{slug}business.ac.uk", "US": f"{slug}business.edu"}),
        )
        for attempt in range(30):
            name, by_country = styles[rng.randrange(len(styles))]
            domain = by_country.get(country.code, f"univ-{slug}.{country.tld}")
            if attempt:
                domain = domain.replace(slug, f"{slug}{attempt}", 1)
                name = f"{name} ({attempt + 1})" if attempt > 2 else name
            if domain not in taken:
                return name, domain
        raise RuntimeError("could not find a free university domain")  # pragma: no cover

    # -- people ---------------------------------------------------------------------------------

    def people(self, companies: list[Company], owners: list[Owner]) -> list[Person]:
        rng = self.rng("people")
        n = self.size
        rand, below, between = _fast(rng)
        weights = [
            (math.log10(c.employees + 1) + 0.5) * (2.0 if c.tier else 1.0) * (3.0 if c.is_university else 1.0)
            for c in companies
        ]
        assigned = rng.choices(range(len(companies)), weights=weights, k=n)
        titles, title_cum = _weighted(TITLES, 3)
        uni_titles, uni_cum = _weighted(UNIVERSITY_TITLES, 3)
        countries, country_cum = _weighted(COUNTRIES, "weight")
        pools = {k: (v[0], v[1], [_ascii_slug(x) for x in v[0]], [_ascii_slug(x) for x in v[1]])
                 for k, v in _NAME_POOLS.items()}
        active_owners = [o.index for o in owners if o.active]
        emails: set[str] = set()
        out: list[Person] = []
        anchor = self.anchor_ms
        stages = (LifecycleStage.SUBSCRIBER, LifecycleStage.LEAD, LifecycleStage.MQL, LifecycleStage.SQL)
        stage_cum = (0.32, 0.86, 0.95, 1.0)
        for index in range(n):
            ci = assigned[index] if rand() > 0.03 else -1  # a few freelancers without a company
            company = companies[ci] if ci >= 0 else None
            if company is not None and rand() < 0.85:
                country = COUNTRY_BY_CODE[company.country]
                city = company.city
            else:
                country = countries[bisect(country_cum, rand() * country_cum[-1])]
                city = country.cities[below(len(country.cities))][0]
            first, last, first_a, last_a = pools[country.names]
            fi, li = below(len(first)), below(len(last))
            if company is not None and company.is_university:
                title, seniority, department, _ = uni_titles[bisect(uni_cum, rand() * uni_cum[-1])]
            else:
                title, seniority, department, _ = titles[bisect(title_cum, rand() * title_cum[-1])]
            free_share = 0.3 if seniority == "student" else 0.08
            if company is None or rand() < free_share:
                domain = FREE_MAIL_DOMAINS[below(len(FREE_MAIL_DOMAINS))]
                local = f"{first_a[fi]}{'.' if rand() < 0.5 else ''}{last_a[li]}{between(1, 99)}"
            else:
                domain = company.domain
                local = f"{first_a[fi]}.{last_a[li]}" if rand() < 0.8 else f"{first_a[fi][0]}{last_a[li]}"
            email = f"{local}@{domain}"
            serial = 2
            while email in emails:
                email = f"{local}{serial}@{domain}"
                serial += 1
            emails.add(email)
            phone = None
            if rand() < 0.8:
                phone = f"+{country.phone_code} {between(20, 999)} {between(1_000_000, 9_999_999)}"
            stage = stages[bisect(stage_cum, rand())]
            status = None
            if stage is not LifecycleStage.SUBSCRIBER:
                status = LEAD_STATUSES[bisect((0.35, 0.55, 0.7, 0.7, 0.8, 0.9, 0.96), rand())]
            bant = [None, None, None, None]
            if rand() < (0.45 if stage is LifecycleStage.SQL else 0.12):
                bant = [
                    BANT_BUDGET[bisect((0.25, 0.6), rand())],
                    BANT_AUTHORITY[bisect((0.35, 0.8), rand())] if seniority not in ("student", "intern")
                    else "none",
                    BANT_NEED[bisect((0.35, 0.8), rand())],
                    BANT_TIMELINE[bisect((0.2, 0.55, 0.85), rand())],
                ]
            project = PROJECT_STATUSES[bisect((0.3, 0.75), rand())] if rand() < 0.2 else None
            owner = -1
            if company is not None and company.owner >= 0 and (stage is not LifecycleStage.SUBSCRIBER or rand() < 0.3):
                owner = company.owner
            elif stage in (LifecycleStage.MQL, LifecycleStage.SQL):
                owner = active_owners[below(len(active_owners))]
            created = anchor - int(rand() ** 0.7 * 720 * DAY_MS) - below(DAY_MS)
            person = Person(index, first[fi], last[li], email, title, seniority, department, phone, country.code,
                            city, country.region, ci, stage, status, rand() < 0.04, rand() < 0.02, *bant, project,
                            owner, created, created)
            out.append(person)
            if company is not None:
                company.people.append(index)
        return out

    # -- deals ------------------------------------------------------------------------------------

    def deals(self, companies: list[Company], people: list[Person], owners: list[Owner],
              pipelines: list[Pipeline]) -> list[Deal]:
        rng = self.rng("deals")
        count = max(3, self.size // 20)
        eligible = [c for c in companies if c.people and not c.is_competitor and not c.is_university]
        if not eligible:
            return []
        weights = [(3.0 if c.tier == "tier_1" else 2.0 if c.tier else 1.0) * math.log10(c.employees + 10)
                   for c in eligible]
        active = [o.index for o in owners if o.active and o.team != 4]
        chosen = rng.choices(eligible, weights=weights, k=count)
        out: list[Deal] = []
        anchor = self.anchor
        for index, company in enumerate(chosen):
            renewal = company.lifecycle is LifecycleStage.CUSTOMER and rng.random() < 0.5
            pipeline = pipelines[1] if renewal else pipelines[0]
            draw = rng.random()
            n_stages = len(pipeline.stages)
            if draw < 0.22:
                stage = next(i for i, s in enumerate(pipeline.stages) if s.won)
            elif draw < 0.42:
                stage = next(i for i, s in enumerate(pipeline.stages) if s.closed and not s.won)
            else:
                stage = rng.randrange(n_stages - 2)
            closed = pipeline.stages[stage].closed
            created_days = rng.randint(5, 240)
            created = self.anchor_ms - created_days * DAY_MS - rng.randrange(DAY_MS)
            if closed:
                close = (anchor - timedelta(days=rng.randint(0, max(0, created_days - 3)))).date()
            else:
                close = (anchor + timedelta(days=rng.randint(7, 150))).date()
            size = max(1.0, math.log10(company.employees + 1))
            amount = int(rng.uniform(4_000, 30_000) * size / 100) * 100
            members = tuple(rng.sample(company.people, min(len(company.people), rng.choice((1, 1, 2, 2, 3)))))
            owner = company.owner if company.owner >= 0 else active[rng.randrange(len(active))]
            if company.owner < 0:
                company.owner = owner
            currency = "EUR" if company.region == "EMEA" and company.country != "GB" else \
                "GBP" if company.country == "GB" else "USD"
            name = f"{company.name.split(' ')[0]} - {'Renewal' if renewal else rng.choice(_DEAL_PRODUCTS)}"
            updated = min(self.anchor_ms - 1000, created + rng.randrange(0, created_days * DAY_MS))
            out.append(Deal(index, name, amount, currency, pipeline.index, stage, close, company.index, members,
                            owner, created, updated))
            won = pipeline.stages[stage].won
            if won:
                company.lifecycle = LifecycleStage.CUSTOMER
            elif not closed and company.lifecycle is not LifecycleStage.CUSTOMER:
                company.lifecycle = LifecycleStage.OPPORTUNITY
            for p in members:
                person = people[p]
                target = LifecycleStage.CUSTOMER if won else LifecycleStage.OPPORTUNITY if not closed else None
                if target is not None and person.lifecycle.rank < target.rank:
                    person.lifecycle = target
                    person.lead_status = "open_deal" if target is LifecycleStage.OPPORTUNITY else None
                if person.owner < 0:
                    person.owner = owner
        for company in companies:
            if company.lifecycle is LifecycleStage.CUSTOMER and company.renewal_date is None:
                company.renewal_date = (anchor + timedelta(days=rng.randint(20, 365))).date()
        return out

    # -- behaviours -------------------------------------------------------------------------------

    def behaviours(self, people: list[Person], companies: list[Company], pages: list[Page], forms: list[Form],
                   campaigns: list[Campaign]) -> Behaviours:
        rand = self.rng("behaviours").random
        anchor = self.anchor_ms
        window = BEHAVIOUR_WINDOW_DAYS * DAY_MS
        by_section: dict[str, list[int]] = {}
        for page in pages:
            by_section.setdefault(page.section, []).append(page.index)
        browse = by_section["blog"] * 3 + by_section["product"] * 3 + by_section["pricing"] * 2 + \
            by_section["home"] * 3 + by_section["customers"] * 2 + by_section["careers"] + by_section["resources"]
        forms_by_kind: dict[str, list[int]] = {}
        for form in forms:
            forms_by_kind.setdefault(form.kind, []).append(form.index)
        # Which forms a persona fills in: students download guides, buyers ask for demos.
        persona_forms = {
            "student": _form_mix(forms_by_kind, guide=8, ebook=4, newsletter=2, webinar=2, case_study=1),
            "buyer": _form_mix(forms_by_kind, demo=4, contact=3, buyers_guide=4, case_study=2, webinar=2,
                               guide=2, ebook=1, newsletter=1),
            "other": _form_mix(forms_by_kind, guide=4, ebook=3, newsletter=4, webinar=3, buyers_guide=1,
                               case_study=1, contact=0.4, demo=0.6),
        }
        n_browse = len(browse)
        click_pages = [c.click_page for c in campaigns]
        form_pages = [f.page for f in forms]
        sent_at = sorted(c.sent_ms for c in campaigns)
        by_sending = sorted(range(len(campaigns)), key=lambda i: campaigns[i].sent_ms)
        level_cum = (0.55, 0.83, 0.96, 1.0)
        level_counts = ((0, 1), (2, 7), (8, 30), (30, 110))
        ats: list[int] = []
        codes: list[int] = []  # kind << 12 | ref: one list append per event instead of two
        people_col: list[int] = []
        start = array("i", [0])
        at_add, code_add = ats.append, codes.append
        # Events are emitted session by session in time order, so no per-person sort is needed: a
        # session lasts under an hour and the next one starts after it ended.
        latest = anchor - 7_200_000
        open_code, click_code, view_code, form_code = EMAIL_OPEN << 12, EMAIL_CLICK << 12, PAGE_VIEW << 12, \
            FORM_SUBMISSION << 12
        for person in people:
            company = companies[person.company] if person.company >= 0 else None
            draw = rand()
            if company is not None and company.is_competitor:
                draw = 0.6 + draw * 0.4  # competitors watch the seller closely
            level = bisect(level_cum, draw)
            low, high = level_counts[min(level, 3)]
            count = low + int(rand() * (high - low + 1))
            if person.unsubscribed:
                count //= 2
            if count:
                persona = "student" if person.seniority == "student" else \
                    "buyer" if person.seniority in ("executive", "vp", "director") else "other"
                form_items, form_cum = persona_forms[persona]
                form_total = form_cum[-1]
                # The more active a person, the more recent their activity tends to be.
                power = 1.0 if level < 2 else 1.7
                sessions = sorted(latest - int((rand() ** power) * window) for _ in range(max(1, round(count / 2.6))))
                free_from = 0
                before = len(ats)
                for at in sessions:
                    if at < free_from:
                        at = free_from
                    if at > latest:
                        break
                    sent = bisect(sent_at, at)
                    if sent and rand() < 0.25:  # a marketing e-mail: opened, sometimes clicked
                        campaign = by_sending[int(rand() * sent)]
                        at_add(at)
                        code_add(open_code | campaign)
                        if rand() < 0.3:
                            at += 5_000 + int(rand() * 895_000)
                            at_add(at)
                            code_add(click_code | campaign)
                            at += 2_000 + int(rand() * 60_000)
                            at_add(at)
                            code_add(view_code | click_pages[campaign])
                    else:  # a web session: a few pages, perhaps a form
                        for _ in range(1 + int(rand() * 4)):
                            at_add(at)
                            code_add(view_code | browse[int(rand() * n_browse)])
                            at += 20_000 + int(rand() * 380_000)
                        if rand() < 0.22:
                            form = form_items[bisect(form_cum, rand() * form_total)]
                            at_add(at)
                            code_add(view_code | form_pages[form])
                            at += 30_000 + int(rand() * 210_000)
                            at_add(at)
                            code_add(form_code | form)
                    free_from = at + 600_000
                if level == 0 and len(ats) - before > count:  # quiet people: one touch at most
                    del ats[before + count:]
                    del codes[before + count:]
                people_col.extend([person.index] * (len(ats) - before))
            start.append(len(ats))
        return Behaviours(array("i", people_col), array("b", [c >> 12 for c in codes]), array("q", ats),
                          array("h", [c & 4095 for c in codes]), start)

    # -- sales activities -------------------------------------------------------------------------

    def activities(self, people: list[Person], companies: list[Company], deals: list[Deal], owners: list[Owner],
                   behaviours: Behaviours) -> list[SalesActivity]:
        rng = self.rng("activities")
        rand, below, between = _fast(rng)
        anchor = self.anchor_ms
        active = [o.index for o in owners if o.active]
        deals_of: dict[int, int] = {}
        for deal in deals:
            for p in deal.people:
                deals_of.setdefault(p, deal.index)
        share = {LifecycleStage.SUBSCRIBER: (0.02, 1), LifecycleStage.LEAD: (0.12, 2), LifecycleStage.MQL: (0.4, 3),
                 LifecycleStage.SQL: (0.8, 5), LifecycleStage.OPPORTUNITY: (0.9, 8), LifecycleStage.CUSTOMER: (0.9, 8)}
        out: list[SalesActivity] = []
        at_col, kind_col = behaviours.at_ms, behaviours.kind
        for person in people:
            probability, most = share.get(person.lifecycle, (0.05, 1))
            # A hand-raiser (form submitted) gets followed up more often than a silent lead.
            span = behaviours.of(person.index)
            raised = next((at_col[i] for i in reversed(span) if kind_col[i] == FORM_SUBMISSION), None)
            if raised is not None:
                probability = min(1.0, probability + 0.25)
            if rand() >= probability:
                continue
            owner = person.owner if person.owner >= 0 else active[below(len(active))]
            deal = deals_of.get(person.index, -1)
            first = raised + between(300_000, 3 * DAY_MS) if raised is not None else \
                anchor - between(1, BEHAVIOUR_WINDOW_DAYS) * DAY_MS
            at = min(first, anchor - 60_000)
            for _ in range(1 + below(most)):
                out.append(self._activity(rng, len(out), at, owner, person.index, person.company, deal, person))
                at = min(at + between(3_600_000, 14 * DAY_MS), anchor - 60_000)
        for deal in deals:  # deal work that is not about one person
            at = deal.created_ms
            for _ in range(between(2, 6)):
                at = min(at + between(DAY_MS, 20 * DAY_MS), anchor - 60_000)
                person = people[deal.people[0]] if deal.people else None
                out.append(self._activity(rng, len(out), at, deal.owner, person.index if person else -1,
                                          deal.company, deal.index, person, deal_work=True))
        for company in companies:  # account notes
            if company.owner >= 0 and rand() < 0.25:
                at = anchor - between(1, BEHAVIOUR_WINDOW_DAYS) * DAY_MS
                out.append(SalesActivity(len(out), ActivityKind.NOTE, at, company.owner, -1, company.index, -1,
                                         "Account note", rng.choice(_ACCOUNT_NOTES), created_ms=at, updated_ms=at))
        return out

    def _activity(self, rng: random.Random, index: int, at: int, owner: int, person: int, company: int, deal: int,
                  who: Person | None, deal_work: bool = False) -> SalesActivity:
        rand, _, between = _fast(rng)
        name = who.first_name if who else "there"
        draw = rand()
        kind = ActivityKind.CALL if draw < 0.3 else ActivityKind.EMAIL_SENT if draw < 0.55 else \
            ActivityKind.EMAIL_REPLY if draw < 0.63 else ActivityKind.MEETING if draw < 0.75 else \
            ActivityKind.NOTE if draw < 0.87 else ActivityKind.TASK
        created = min(at + between(0, 120_000), self.anchor_ms - 1000)
        act = SalesActivity(index, kind, at, owner, person, company, deal, "", "", created_ms=created,
                            updated_ms=created)
        if kind is ActivityKind.CALL:
            act.direction = "outbound" if rand() < 0.85 else "inbound"
            act.status = CALL_STATUSES[bisect((0.55, 0.8, 0.9, 0.97), rand())]
            act.duration_ms = between(60_000, 2_400_000) if act.status == "completed" else 0
            act.subject = f"Call with {name}"
            act.body = rng.choice(_CALL_NOTES) if act.status == "completed" else "No answer, left voicemail."
        elif kind is ActivityKind.EMAIL_SENT:
            act.subject = rng.choice(_SELLER_SUBJECTS).format(name=name)
            act.body = f"Hi {name}, following up on your interest in Lumen Analytics."
            act.status = "sent" if rand() < 0.96 else "bounced"
        elif kind is ActivityKind.EMAIL_REPLY:
            act.subject = "Re: " + rng.choice(_SELLER_SUBJECTS).format(name=name)
            act.body = rng.choice(_REPLIES)
            act.status = "sent"
        elif kind is ActivityKind.MEETING:
            act.booked_by_lead = not deal_work and rand() < 0.35
            act.duration_ms = rng.choice((1_800_000, 1_800_000, 2_700_000, 3_600_000))
            future = rand() < 0.15
            if future:
                act.at_ms = min(at + between(DAY_MS, 10 * DAY_MS), self.anchor_ms + 14 * DAY_MS)
            act.outcome = "scheduled" if future else MEETING_OUTCOMES[1 + bisect((0.75, 0.85, 0.95), rand())]
            act.subject = rng.choice(_MEETING_TITLES).format(name=name)
            act.body = "Agenda: goals, current process, next steps."
        elif kind is ActivityKind.NOTE:
            act.subject = "Note"
            act.body = rng.choice(_PERSON_NOTES)
        else:
            act.task_type = TASK_TYPES[bisect((0.45, 0.8), rand())]
            act.priority = TASK_PRIORITIES[bisect((0.3, 0.7, 0.95), rand())]
            act.subject = rng.choice(_TASK_SUBJECTS).format(name=name)
            act.body = ""
            act.at_ms = at + between(DAY_MS, 7 * DAY_MS)  # the due date
            if act.at_ms < self.anchor_ms - DAY_MS and rand() < 0.8:
                act.status = "completed"
                act.completed_ms = min(act.at_ms + between(-DAY_MS, 2 * DAY_MS), self.anchor_ms - 60_000)
                act.completed_ms = max(act.completed_ms, created + 60_000)
                act.updated_ms = act.completed_ms
            else:
                act.status = TASK_STATUSES[bisect((0.6, 0.85), rand())] if rand() < 0.9 else "deferred"
        return act

    # -- timestamps that depend on everything ------------------------------------------------------

    def finish_timestamps(self, people: list[Person], companies: list[Company], behaviours: Behaviours,
                          activities: list[SalesActivity]) -> None:
        rand = self.rng("timestamps").random
        anchor = self.anchor_ms
        at_col, start = behaviours.at_ms, behaviours.start
        last_activity: dict[int, int] = {}
        for act in activities:
            if act.person >= 0 and act.created_ms <= anchor and act.created_ms > last_activity.get(act.person, 0):
                last_activity[act.person] = act.created_ms
        for person in people:
            begin, end = start[person.index], start[person.index + 1]
            if end > begin and person.created_ms > at_col[begin]:
                person.created_ms = at_col[begin] - 60_000 - int(rand() * 30 * DAY_MS)
            latest = max(person.created_ms, at_col[end - 1] if end > begin else 0,
                         last_activity.get(person.index, 0))
            # Records also change without any behaviour (imports, enrichment, workflows).
            if rand() < 0.5:
                latest = max(latest, anchor - int(rand() * 300 * DAY_MS))
            person.updated_ms = min(anchor, latest + int(rand() * 600_000))
        for company in companies:
            company.updated_ms = min(anchor, max(company.created_ms, anchor - int(rand() * 200 * DAY_MS)))


def _fast(rng: random.Random) -> tuple:
    """``random``, ``below(n)`` and ``between(a, b)``: ``randrange`` is ten times slower than this."""
    rand = rng.random

    def below(n: int) -> int:
        return int(rand() * n)

    def between(low: int, high: int) -> int:
        return low + int(rand() * (high - low))

    return rand, below, between


def _form_mix(forms_by_kind: dict[str, list[int]], **weights: float) -> tuple[list[int], list[float]]:
    items: list[int] = []
    cum: list[float] = []
    total = 0.0
    for kind, weight in weights.items():
        members = forms_by_kind.get(kind, [])
        for form in members:
            total += weight / len(members)
            items.append(form)
            cum.append(total)
    return items, cum


_DEAL_PRODUCTS = ("Platform", "Lead scoring", "Routing add-on", "Enterprise licence", "Pilot", "Expansion")
_CALL_NOTES = (
    "Discussed current lead process; they score leads by hand in spreadsheets.",
    "Qualified: budget planned for next quarter, champion is the marketing lead.",
    "Walked through pricing; needs sign-off from the CFO.",
    "Not a fit right now, revisit after their CRM migration.",
    "Booked a demo with the wider team.",
)
_SELLER_SUBJECTS = (
    "Quick question, {name}", "Following up on your download", "Your demo request", "Ideas for your lead routing",
    "Lumen Analytics pricing", "Next steps",
)
_REPLIES = (
    "Thanks, happy to talk next week.", "Please send over the pricing sheet.",
    "We are evaluating options this quarter.", "Not interested at the moment, thanks.",
    "Looping in our head of sales.",
)
_MEETING_TITLES = ("Discovery call with {name}", "Demo: Lumen Analytics", "Pricing review", "Technical deep dive",
                   "Intro meeting")
_PERSON_NOTES = (
    "Prefers e-mail over phone.", "Uses Salesforce today, contract ends in Q3.",
    "Interested in SLA tracking for their SDR team.", "Asked about GDPR and data residency.",
    "Champion; needs a business case for the CFO.",
)
_ACCOUNT_NOTES = (
    "Strategic account: expansion potential in EMEA.", "Procurement requires a security questionnaire.",
    "Renewal risk: low usage last quarter.", "Executive sponsor changed in January.",
)
_TASK_SUBJECTS = ("Follow up with {name}", "Call {name} about the demo", "Send proposal", "Prepare business case",
                  "Check in after trial")
