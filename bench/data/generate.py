#!/usr/bin/env python3
"""Generate the retrieval eval set and the dedup calibration pairs, deterministically.

    .venv/bin/python bench/data/generate.py      # rewrites the three JSONL files beside it

Outputs (all JSON Lines, committed so the benchmarks need nothing but this directory):
  facts.jsonl       {"id", "category", "text"}                 personal facts, as a user would store them
  questions.jsonl   {"id", "question", "gold": [fact ids]}      questions worded unlike their facts
  dedup_pairs.jsonl {"kind", "a", "b"}                          pairs of texts for the dedup threshold

How the set is made hard enough to tell methods apart: a small "world" of ~170 people, ~45
projects, trips, pets and one-off personal facts, where many facts share their vocabulary (dozens
of birthdays, deadlines, budgets) and the same person appears in several facts. A question names
its subject as a person would (a name, a project, a city) but asks for the attribute in other words
("When does Maria turn a year older?" for "My sister Maria was born on 14 March 1988"), so keyword
search finds the subject and must still pick the right fact, and vector search must bridge the
paraphrase. Every question has exactly the gold facts that answer it: subjects are unique within a
kind of fact.

Dedup pairs, three kinds: "paraphrase", the same fact rendered through two different templates;
"update", one template and subject with other values (the project's deadline moved, the friend
moved to another city); "other", one template about two different subjects (two people's jobs).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

SEED = 20261204
HERE = Path(__file__).resolve().parent

FIRST_NAMES = """Maria Tom Anna Lukas Sofia Jonas Emma Noah Mia Elias Lena Felix Clara Paul Hannah Leon Julia
Finn Laura Ben Sarah Max Lea David Nina Samuel Eva Jakob Marie Simon Alice Oscar Ida Theo Greta Liam Nora Hugo
Ella Adam Zoe Victor Rosa Isaac Vera Henry Lucy Arthur Iris Oliver Chloe Daniel Ruby Gabriel Stella Martin Amelia
Peter Olivia Robert Grace Thomas Helen Mark Alice Karen Steven Linda Brian Nancy Kevin Betty Jason Sandra Ryan
Diana Eric Carla Frank Tina Gary Paula Sean Irene Raj Priya Arjun Ananya Wei Mei Hiroshi Yuki Kenji Aiko Omar
Layla Yusuf Fatima Mateo Lucia Diego Valentina Pablo Camila Andrei Ioana Piotr Kasia Nikos Eleni Sven Astrid
Lars Freja Matteo Giulia Luca Chiara Pierre Camille Louis Manon Kofi Ama Tariq Noor Dmitri Olga Jan Petra Miguel
Ines Rafael Beatriz Ahmed Salma Tobias Frieda Emil Johanna Anton Mila Konrad Marta Dario Elsa Bruno Nadia Ivan
Sonia Kai Leila Malik Aisha Rohan Tara Ethan Maya Caleb Naomi Owen Hazel Ezra Violet Jude Willow Rhys Freya
Callum Isla Declan Niamh Cormac Aoife""".split()

SURNAMES = """Novak Kowalski Schmidt Rossi Garcia Dubois Jensen Silva Moreau Costa Fischer Weber Bauer Keller
Larsen Nielsen Horvat Popescu Ivanova Tanaka Sato Kim Chen Patel Singh Okafor Mensah Haddad Nasser Lindqvist
Brennan Walsh Murphy Kelly Byrne Meyer Wagner Hoffmann Kraus Vogel Richter Lehmann Ortiz Ramos Vega Castro""".split()

RELATIONS = {
    "any": ["cousin", "friend", "best friend", "neighbour", "colleague", "manager", "old school friend", "flatmate",
            "mentor", "client", "landlord", "teammate"],
    "she": ["sister", "aunt", "niece", "godmother", "sister-in-law", "grandmother", "stepsister"],
    "he": ["brother", "uncle", "nephew", "godfather", "brother-in-law", "grandfather", "stepbrother"],
}
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
JOBS = [
    ("nurse", "St. Mary's Hospital"), ("software engineer", "Spotify"), ("architect", "Foster + Partners"),
    ("primary school teacher", "Greenfield Primary"), ("accountant", "Deloitte"), ("data scientist", "Zalando"),
    ("pharmacist", "Boots"), ("pilot", "Lufthansa"), ("chef", "a small bistro called Le Petit Coin"),
    ("lawyer", "Clifford Chance"), ("physiotherapist", "a sports clinic"), ("journalist", "The Guardian"),
    ("electrician", "his own company"), ("product manager", "Shopify"), ("veterinarian", "a vet practice in town"),
    ("UX designer", "IDEO"), ("police officer", "the city police"), ("dentist", "a dental clinic"),
    ("civil engineer", "Arup"), ("marketing director", "Nestlé"), ("researcher", "CERN"),
    ("firefighter", "the local fire brigade"), ("bookseller", "Waterstones"), ("translator", "the European Commission"),
    ("barista", "Starbucks"), ("carpenter", "a furniture workshop"), ("midwife", "the maternity ward"),
    ("sales manager", "Siemens"), ("photographer", "a wedding studio"), ("museum curator", "the Tate"),
]
CITIES = [
    "Lisbon", "Porto", "Madrid", "Barcelona", "Valencia", "Lyon", "Marseille", "Bordeaux", "Berlin", "Hamburg",
    "Munich", "Leipzig", "Vienna", "Graz", "Zurich", "Basel", "Milan", "Turin", "Bologna", "Naples", "Amsterdam",
    "Utrecht", "Rotterdam", "Brussels", "Ghent", "Copenhagen", "Aarhus", "Stockholm", "Gothenburg", "Oslo",
    "Bergen", "Helsinki", "Tallinn", "Riga", "Vilnius", "Warsaw", "Krakow", "Prague", "Brno", "Budapest",
    "Ljubljana", "Zagreb", "Athens", "Thessaloniki", "Dublin", "Cork", "Edinburgh", "Glasgow", "Manchester",
    "Bristol", "Leeds", "Toronto", "Montreal", "Vancouver", "Boston", "Chicago", "Seattle", "Austin", "Denver",
    "Kyoto", "Osaka", "Seoul", "Melbourne", "Auckland", "Cape Town", "Nairobi", "Marrakech", "Istanbul",
]
ALLERGENS = ["peanuts", "shellfish", "gluten", "lactose", "eggs", "sesame", "walnuts", "strawberries", "kiwi",
             "soy", "celery", "mustard", "penicillin", "cat hair", "bee stings", "pollen", "latex", "fish"]
GIFTS = ["single malt whisky", "dark chocolate", "jigsaw puzzles", "scented candles", "vinyl records",
         "fountain pens", "succulents", "crime novels", "Lego sets", "board games", "hot sauce", "loose-leaf tea",
         "silk scarves", "craft beer", "watercolour paints", "cookbooks", "specialty coffee beans", "wool socks",
         "concert tickets", "orchids", "chess sets", "model trains", "perfume", "yoga gear"]
PLACES_MET = ["a conference in {city}", "university in {city}", "a hiking trip near {city}", "a wedding in {city}",
              "a salsa class in {city}", "my first job in {city}", "a language exchange in {city}",
              "a hackathon in {city}", "the gym in {city}", "a choir in {city}"]

PROJECT_NAMES = """Atlas Beacon Cascade Delta Ember Falcon Granite Harbor Iris Juniper Keystone Lighthouse Meridian
Nimbus Orchid Pinnacle Quartz Redwood Sapphire Tundra Umbra Vortex Willow Xenon Yarrow Zephyr Aurora Bramble
Cobalt Driftwood Evergreen Fjord Glacier Horizon Indigo Jasper Kestrel Lantern Mosaic Nebula Onyx Prairie Quill
Raven Sequoia""".split()
STACKS = [("Python", "PostgreSQL"), ("Go", "SQLite"), ("TypeScript", "MongoDB"), ("Rust", "Redis"),
          ("Java", "Oracle"), ("Kotlin", "MySQL"), ("Ruby on Rails", "PostgreSQL"), ("Elixir", "Cassandra"),
          ("C#", "SQL Server"), ("Swift", "Firebase"), ("PHP", "MariaDB"), ("Scala", "Kafka")]
CLIENTS = ["Acme Logistics", "Northwind Traders", "Globex Insurance", "Initech", "Umbrella Health", "Stark Retail",
           "Wayne Foundation", "Hooli Cloud", "Vandelay Imports", "Soylent Foods", "Tyrell Robotics", "Cyberdyne Energy",
           "Aperture Labs", "Blue Sun Media", "Oscorp Pharma", "Pied Piper", "Massive Dynamic", "Dunder Mifflin"]
REGIONS = ["Frankfurt", "Ireland", "Virginia", "Oregon", "Singapore", "Tokyo", "Paris", "Stockholm", "Sydney"]

MEDS = [("metformin", "500 mg", "with breakfast and dinner"), ("levothyroxine", "75 micrograms", "every morning before food"),
        ("atorvastatin", "20 mg", "at bedtime"), ("vitamin D", "1000 IU", "daily in winter"),
        ("omeprazole", "20 mg", "before breakfast"), ("ramipril", "5 mg", "once a day"),
        ("sertraline", "50 mg", "each morning"), ("cetirizine", "10 mg", "during hay fever season"),
        ("iron supplements", "65 mg", "every other day"), ("magnesium", "300 mg", "in the evening"),
        ("melatonin", "1 mg", "on nights before early flights"), ("ibuprofen", "400 mg", "only when my knee flares up"),
        ("folic acid", "400 micrograms", "every day"), ("omega-3 fish oil", "1 g", "with lunch")]
DOCTORS = [("dentist", "check-up and cleaning"), ("dermatologist", "mole check"), ("GP", "annual blood test"),
           ("physiotherapist", "knee rehab session"), ("optician", "eye test for new glasses"),
           ("cardiologist", "ECG follow-up"), ("orthodontist", "retainer adjustment"),
           ("allergist", "skin prick test"), ("gynaecologist", "routine screening"), ("psychotherapist", "weekly session"),
           ("ENT specialist", "sinus follow-up"), ("podiatrist", "insoles fitting")]
PETS = [("Biscuit", "dog", "beagle"), ("Luna", "cat", "Maine Coon"), ("Pepper", "dog", "border collie"),
        ("Mochi", "cat", "British Shorthair"), ("Rocky", "dog", "boxer"), ("Nala", "dog", "golden retriever"),
        ("Ziggy", "rabbit", "lop-eared rabbit"), ("Oreo", "cat", "tuxedo cat"), ("Bruno", "dog", "dachshund"),
        ("Kiwi", "parrot", "budgie"), ("Simba", "cat", "Bengal"), ("Daisy", "dog", "cocker spaniel"),
        ("Sushi", "fish", "betta fish"), ("Tofu", "dog", "shiba inu"), ("Gizmo", "hamster", "Syrian hamster")]
MEETINGS = [("team standup", "daily at 9:15"), ("sprint planning", "every second Monday at 10:00"),
            ("retrospective", "every second Friday at 15:00"), ("architecture review", "on Wednesdays at 14:00"),
            ("all-hands", "on the first Thursday of the month at 16:00"), ("book club", "on the last Sunday of the month"),
            ("choir rehearsal", "on Tuesday evenings at 19:30"), ("five-a-side football", "on Thursdays at 20:00"),
            ("Spanish lesson", "on Mondays at 18:00"), ("piano lesson", "on Saturday mornings at 11:00"),
            ("security sync", "on Tuesdays at 11:30"), ("budget review", "quarterly, in the first week of the quarter"),
            ("climbing session", "on Wednesday evenings"), ("family video call", "on Sunday afternoons")]
AIRLINES = [("KL", "KLM"), ("LH", "Lufthansa"), ("BA", "British Airways"), ("AF", "Air France"), ("IB", "Iberia"),
            ("TP", "TAP"), ("SK", "SAS"), ("AY", "Finnair"), ("OS", "Austrian"), ("LX", "Swiss"), ("EI", "Aer Lingus"),
            ("U2", "easyJet"), ("FR", "Ryanair"), ("VY", "Vueling")]
HOTELS = ["Hotel Bellavista", "the Grand Central Hotel", "an Airbnb near the old town", "the Ibis by the station",
          "a guesthouse run by an elderly couple", "the Hilton Garden Inn", "a boutique hotel called Casa Azul",
          "my friend's flat", "the Radisson Blu", "a hostel in the centre", "a cabin by the lake", "the Marriott"]


@dataclass
class Fact:
    category: str
    texts: list[str]  # two or more renderings of the same fact; the first is stored
    questions: list[str]
    key: str  # "family:subject"; the subject (a name, project, city ...) appears verbatim in texts
    id: int = 0
    stored: int = 0  # which rendering is stored

    @property
    def family(self) -> str:
        return self.key.split(":", 1)[0]

    @property
    def subject(self) -> str:
        return self.key.split(":", 1)[1]

    @property
    def text(self) -> str:
        return self.texts[self.stored]


def article(word: str) -> str:
    return f"an {word}" if word[0].lower() in "aeiou" else f"a {word}"


def pick(rng: random.Random, items: list[str]) -> str:
    return items[rng.randrange(len(items))]


def date_parts(rng: random.Random) -> tuple[int, str, int]:
    return rng.randint(1, 28), pick(rng, MONTHS), rng.randint(1948, 2012)


def person_facts(rng: random.Random, name: str, rel: str, pronoun: str, world: dict) -> list[Fact]:
    """Up to eight kinds of fact about one person, each rendered two or three ways."""
    his = {"he": "his", "she": "her"}[pronoun]
    day, month, year = date_parts(rng)
    job, company = JOBS[rng.randrange(len(JOBS))]
    city = pick(rng, CITIES)
    years = rng.randint(2, 15)
    allergen = pick(rng, ALLERGENS)
    gift = pick(rng, GIFTS)
    spouse = pick(rng, world["other_names"])
    kid1, kid2 = rng.sample(world["other_names"], 2)
    met = pick(rng, PLACES_MET).format(city=pick(rng, CITIES))
    met_year = rng.randint(1995, 2024)
    kinds: dict[str, Fact] = {
        "birthday": Fact("people/birthday", [
            f"My {rel} {name} was born on {day} {month} {year}.",
            f"{name} ({rel}) has {his} birthday on {month} {day}; born in {year}.",
            f"{name}'s birthday is the {day} of {month} — {pronoun} was born in {year}.",
        ], [
            f"When does {name} turn a year older?",
            f"What day should I send {name} a card?",
            f"Which date is {name}'s bday?",
        ], "birthday"),
        "job": Fact("people/work", [
            f"{name} works as {article(job)} at {company}.",
            f"My {rel} {name} is {article(job)}, employed by {company}.",
            f"{name} has a job at {company} — {pronoun} is {article(job)} there.",
        ], [
            f"What does {name} do for a living?",
            f"What is {name}'s profession?",
            f"Who employs {name}?",
        ], "job"),
        "city": Fact("people/home", [
            f"{name} lives in {city}; {pronoun} moved there {years} years ago.",
            f"My {rel} {name} has been based in {city} for {years} years.",
        ], [
            f"Which town is {name} living in now?",
            f"Where is {name}'s home these days?",
            f"If I want to visit {name}, where do I need to travel?",
        ], "city"),
        "allergy": Fact("people/health", [
            f"{name} is allergic to {allergen}.",
            f"Careful: {name} has a {allergen} allergy.",
            f"My {rel} {name} reacts badly to {allergen} (allergy).",
        ], [
            f"What must I leave out when I cook for {name}?",
            f"Is there anything {name} can't tolerate?",
        ], "allergy"),
        "gift": Fact("people/gifts", [
            f"{name} loves {gift} — a safe present idea.",
            f"Good gift for my {rel} {name}: {gift}.",
        ], [
            f"What should I buy {name} as a present?",
            f"Any idea what {name} would enjoy receiving?",
        ], "gift"),
        "spouse": Fact("people/family", [
            f"{name} is married to {spouse}.",
            f"{name}'s spouse is called {spouse}.",
            f"{spouse} and {name} are a married couple.",
        ], [
            f"Who is {name}'s husband or wife?",
            f"What is the name of {name}'s partner?",
        ], "spouse"),
        "kids": Fact("people/family", [
            f"{name} has two children, {kid1} and {kid2}.",
            f"My {rel} {name}'s kids are called {kid1} and {kid2}.",
        ], [
            f"What are the names of {name}'s sons and daughters?",
            f"Does {name} have any little ones, and what are they called?",
        ], "kids"),
        "met": Fact("people/history", [
            f"I met {name} at {met} in {met_year}.",
            f"{name} and I first got to know each other at {met}, back in {met_year}.",
        ], [
            f"How do I know {name}?",
            f"Where did {name} and I first cross paths?",
        ], "met"),
    }
    chosen = rng.sample(list(kinds), rng.randint(3, 5))
    facts = []
    for kind in chosen:
        fact = kinds[kind]
        fact.key = f"{kind}:{name}"
        facts.append(fact)
    return facts


def project_facts(rng: random.Random, project: str, world: dict) -> list[Fact]:
    day, month, _ = date_parts(rng)
    year = rng.choice([2025, 2026, 2027])
    lang, db = STACKS[rng.randrange(len(STACKS))]
    lead = pick(rng, world["people"])
    budget = f"{rng.randint(2, 90) * 5}k EUR"
    client = pick(rng, CLIENTS)
    region = pick(rng, REGIONS)
    host = f"{project.lower()}-{rng.choice(['prod', 'app', 'web'])}-{rng.randint(1, 9)}"
    kinds = {
        "deadline": Fact("work/projects", [
            f"The {project} project is due on {day} {month} {year}.",
            f"Deadline for {project}: {month} {day}, {year}.",
            f"{project} has to ship by {day} {month} {year}.",
        ], [
            f"When must {project} be delivered?",
            f"What's the cutoff date for {project}?",
            f"How long do we have left to finish {project}?",
        ], "deadline"),
        "stack": Fact("work/projects", [
            f"{project} is written in {lang} with {article(db)} database.",
            f"Tech stack of {project}: {lang} on top of {db}.",
        ], [
            f"Which programming language and datastore does {project} use?",
            f"What technology is {project} built on?",
        ], "stack"),
        "lead": Fact("work/projects", [
            f"{lead} leads the {project} project.",
            f"The {project} project is run by {lead}.",
            f"{lead} is the lead on {project}.",
        ], [
            f"Who is in charge of {project}?",
            f"Who should I ask about {project}, who owns it?",
        ], "lead"),
        "budget": Fact("work/projects", [
            f"The budget for {project} is {budget}.",
            f"{project} was given {budget} of funding.",
        ], [
            f"How much money is allocated to {project}?",
            f"What can we spend on {project} in total?",
        ], "budget"),
        "client": Fact("work/projects", [
            f"{project} is being built for our client {client}.",
            f"The customer behind {project} is {client}.",
        ], [
            f"Which customer is {project} for?",
            f"Who commissioned {project}?",
        ], "client"),
        "host": Fact("work/infrastructure", [
            f"{project} runs on the server {host} in the {region} region.",
            f"Production for {project} is deployed to {host} ({region}).",
        ], [
            f"Where is {project} hosted?",
            f"Which machine serves {project} in production?",
        ], "host"),
    }
    chosen = rng.sample(list(kinds), rng.randint(2, 4))
    facts = []
    for kind in chosen:
        fact = kinds[kind]
        fact.key = f"project-{kind}:{project}"
        facts.append(fact)
    return facts


# Unique personal facts, hand-written: (category, [renderings], [questions]).
SINGLETONS: list[tuple[str, list[str], list[str]]] = [
    ("preferences", ["I always book an aisle seat on flights.", "On planes I prefer sitting on the aisle."],
     ["Where do I like to sit when I fly?", "Window or corridor on the plane?"]),
    ("preferences", ["My coffee order is an oat milk flat white, no sugar.", "I drink flat whites with oat milk and no sugar."],
     ["How do I take my coffee?", "What should I get me at the café?"]),
    ("preferences", ["I use Neovim as my main code editor.", "My editor of choice for programming is Neovim."],
     ["Which text editor do I write software in?"]),
    ("preferences", ["I'm vegetarian but I eat fish now and then.", "I don't eat meat, though I do eat fish occasionally."],
     ["What is my diet?", "Can I order a steak for me at the restaurant?"]),
    ("preferences", ["I hate coriander; it tastes like soap to me.", "Coriander is the one herb I can't stand."],
     ["Which herb should never go in my food?"]),
    ("preferences", ["My favourite band is Radiohead.", "Radiohead is the group I love most."],
     ["Which musicians do I like best?"]),
    ("preferences", ["I like to run in the morning before work, usually 5 km.", "Most weekdays I jog 5 km before starting work."],
     ["When do I go jogging and how far?"]),
    ("preferences", ["I prefer emails over phone calls for work matters.", "For work, contact me by email rather than calling."],
     ["What's the best way to reach me about a work topic?"]),
    ("preferences", ["My favourite cuisine is Japanese, especially ramen.", "Japanese food is what I love most, ramen above all."],
     ["What kind of food do I enjoy the most?"]),
    ("preferences", ["I read science fiction; Ursula K. Le Guin is my favourite author.", "My favourite writer is Ursula K. Le Guin, I mostly read sci-fi."],
     ["Which novelist do I admire most?", "What genre of books do I read?"]),
    ("preferences", ["I keep my phone on silent during meetings and after 21:00.", "After 9 pm my phone is muted, and also in meetings."],
     ["When is my mobile muted?"]),
    ("preferences", ["I prefer dark mode in every app.", "Dark themes everywhere, please; light mode hurts my eyes."],
     ["Do I like a light or a dark colour scheme on screens?"]),
    ("preferences", ["For holidays I like mountains more than beaches.", "I'd rather go hiking in the mountains than lie on a beach."],
     ["What type of vacation appeals to me?"]),
    ("preferences", ["My favourite colour is forest green.", "I love forest green more than any other colour."],
     ["Which hue do I like best?"]),
    ("preferences", ["I drink my tea black, Earl Grey, no milk.", "Earl Grey without milk is my tea."],
     ["How do I like my tea?"]),
    ("preferences", ["I support FC Barcelona.", "My football team is Barça."],
     ["Which soccer club am I a fan of?"]),
    ("preferences", ["I'd rather take the train than fly for trips under 6 hours.", "For journeys shorter than six hours I choose rail over planes."],
     ["How do I prefer to travel on medium distances?"]),
    ("preferences", ["I sleep best with the window open and a cool room, around 17 degrees.", "My bedroom should be cool, about 17 °C, window open."],
     ["What temperature do I like at night?"]),
    ("preferences", ["I write in British English, not American spelling.", "Please use British spelling (colour, organise) in my documents."],
     ["Which spelling conventions do I follow?"]),
    ("preferences", ["In code reviews I want blunt, direct feedback.", "Give me direct, unvarnished comments when reviewing my code."],
     ["How should people critique my pull requests?"]),
    ("preferences", ["My preferred programming language is Python.", "Python is the language I'm most productive in."],
     ["Which language do I like to code in most?"]),
    ("preferences", ["I don't drink alcohol.", "I'm teetotal."],
     ["Should I bring wine for me to the party?"]),
    ("preferences", ["I like my eggs poached, never scrambled.", "Poached is how I want my eggs, not scrambled."],
     ["How should my eggs be cooked at breakfast?"]),
    ("preferences", ["My favourite film is Spirited Away.", "The movie I love most is Spirited Away."],
     ["Which motion picture is my all-time favourite?"]),
    ("preferences", ["I want meeting invites to include an agenda, otherwise I decline.", "I decline meetings that come without an agenda."],
     ["What do I expect in a calendar invitation?"]),
    ("health", ["My blood type is O negative.", "I'm O-negative (blood group)."],
     ["Which blood group do I have?"]),
    ("health", ["I had my last tetanus shot in March 2021.", "Tetanus vaccination: last one was March 2021."],
     ["When was I last vaccinated against lockjaw?"]),
    ("health", ["I'm short-sighted: -2.5 in the left eye and -2.75 in the right.", "My glasses prescription is -2.5 left, -2.75 right."],
     ["What is my eyesight prescription?"]),
    ("health", ["I tore the ACL in my left knee skiing in 2019.", "Left knee: ACL tear from a ski accident in 2019."],
     ["What injury did I have on the slopes?"]),
    ("health", ["I get migraines when I skip meals.", "Skipping a meal gives me a migraine."],
     ["What triggers my headaches?"]),
    ("health", ["I'm allergic to penicillin.", "Penicillin gives me an allergic reaction."],
     ["Which antibiotic must doctors not prescribe me?"]),
    ("health", ["My resting heart rate is about 58 bpm.", "At rest my pulse sits around 58 beats per minute."],
     ["How fast does my heart beat when I'm relaxed?"]),
    ("health", ["I weigh 74 kg and I'm 181 cm tall.", "Height 181 cm, weight 74 kg."],
     ["How tall am I?", "What is my body mass?"]),
    ("health", ["My health insurance is with TK, member since 2015.", "I've been insured with Techniker Krankenkasse (TK) since 2015."],
     ["Which health insurer am I with?"]),
    ("health", ["I'm lactose intolerant, so I take lactase pills with dairy.", "Dairy upsets my stomach unless I take lactase tablets."],
     ["Why do I avoid milk products?"]),
    ("home", ["Our flat is number 42 on the 5th floor.", "We live in apartment 42, fifth floor."],
     ["Which apartment do we live in?"]),
    ("home", ["The rent is 1450 EUR, due on the 1st of each month.", "We pay 1450 euros rent at the start of every month."],
     ["How much do we pay the landlord monthly?"]),
    ("home", ["Our internet provider is Vodafone, 250 Mbit fibre.", "Home broadband: Vodafone fibre at 250 Mbit/s."],
     ["Who supplies our broadband connection?"]),
    ("home", ["The car's licence plate is B-KL 4821.", "Our car registration number is B-KL 4821."],
     ["What's on the number plate of our vehicle?"]),
    ("home", ["Bin collection is on Tuesday mornings; recycling every other week.", "Rubbish is collected Tuesday mornings, recycling fortnightly."],
     ["When does the garbage truck come?"]),
    ("home", ["My shoe size is EU 43.", "I wear size 43 shoes (European)."],
     ["What size footwear do I buy?"]),
    ("home", ["The boiler was serviced in October 2025 by HeatPro.", "HeatPro did the boiler service last October 2025."],
     ["When did the heating system last get maintenance?"]),
    ("home", ["The spare key is with our neighbour Mrs Petersen at number 40.", "Mrs Petersen next door (no. 40) keeps our spare key."],
     ["Who can let me in if I'm locked out?"]),
    ("home", ["Our wedding anniversary is on 18 August.", "We got married on 18 August."],
     ["When do my partner and I celebrate the day we tied the knot?"]),
    ("home", ["The electricity meter number is 7743-1190-22.", "Power meter no. 7743-1190-22."],
     ["What's the ID of our electric meter?"]),
    ("work", ["My manager is Claire Dubois.", "I report to Claire Dubois."],
     ["Who is my boss?"]),
    ("work", ["My salary review is every April.", "Pay reviews happen each April for me."],
     ["When can I negotiate a raise?"]),
    ("work", ["I work from home on Mondays and Fridays.", "Mondays and Fridays are my remote days."],
     ["Which days am I not in the office?"]),
    ("work", ["My employee number is E-20417.", "Staff ID: E-20417."],
     ["What is my personnel number at the company?"]),
    ("work", ["I have 28 days of annual leave, 9 left this year.", "Holiday allowance: 28 days, 9 remaining this year."],
     ["How much vacation do I have left?"]),
    ("work", ["The office is at Friedrichstraße 68, 3rd floor.", "Our office address: Friedrichstraße 68, third floor."],
     ["Where is my workplace located?"]),
    ("work", ["My notice period is three months.", "I have to give 3 months' notice if I quit."],
     ["How long before leaving must I resign?"]),
    ("work", ["I'm on call every fourth week, starting Monday 09:00.", "On-call rotation: one week in four, Monday 9 am start."],
     ["How often is it my turn to handle pager duty?"]),
    ("work", ["Our team uses Linear for tickets and GitHub for code.", "Tickets live in Linear; code is on GitHub."],
     ["Which issue tracker does my team use?"]),
    ("work", ["I'm learning Spanish and I'm at level B1.", "My Spanish is around B1 and I'm still studying it."],
     ["How good is my Spanish?"]),
    ("travel", ["My passport expires on 3 November 2029.", "Passport valid until 3 Nov 2029."],
     ["When do I need to renew my travel document?"]),
    ("travel", ["My frequent flyer number with Miles & More is 992 004 118.", "Miles & More membership: 992 004 118."],
     ["What's my airline loyalty account number?"]),
    ("travel", ["I always pack a travel adapter and noise-cancelling headphones.", "Never travel without my plug adapter and ANC headphones."],
     ["What gadgets do I bring on every trip?"]),
    ("travel", ["I get motion sickness on boats.", "Ferries and boats make me seasick."],
     ["Do I cope well at sea?"]),
    ("travel", ["I have a Global Entry membership until 2028.", "Global Entry (US trusted traveller) valid through 2028."],
     ["Can I use the fast lane at US immigration?"]),
    ("finance", ["My bank is ING; I also have a savings account at N26.", "Banking: main account at ING, savings at N26."],
     ["Which banks hold my money?"]),
    ("finance", ["I pay 45 EUR a month for the gym at FitX.", "FitX membership costs me 45 euros monthly."],
     ["How much is my fitness club subscription?"]),
    ("finance", ["The car insurance renews on 1 January with HUK.", "HUK car insurance renewal date: 1 January."],
     ["When is my vehicle cover up for renewal?"]),
    ("finance", ["I put 300 EUR into an index fund on the 15th of every month.", "Monthly savings plan: 300 euros into an ETF on the 15th."],
     ["How much do I invest each month?"]),
    ("finance", ["My tax advisor is Mr Brandt at Brandt & Partner.", "Mr Brandt of Brandt & Partner does my taxes."],
     ["Who prepares my tax return?"]),
]


def build(rng: random.Random) -> list[Fact]:
    names = list(dict.fromkeys(FIRST_NAMES))
    rng.shuffle(names)
    people = names[:178]
    world = {"people": [f"{n} {pick(rng, SURNAMES)}" for n in names[:60]], "other_names": names}
    facts: list[Fact] = []
    for name in people:
        pronoun = rng.choice(["he", "she"])
        facts += person_facts(rng, name, pick(rng, RELATIONS["any"] + RELATIONS[pronoun]), pronoun, world)
    for project in PROJECT_NAMES:
        facts += project_facts(rng, project, world)
    for med, dose, when in MEDS:
        facts.append(Fact("health/medication", [
            f"I take {dose} of {med} {when}.", f"{med.capitalize()}: {dose}, {when}.",
        ], [f"What dose of {med} am I on?", f"How much {med} should I swallow and when?"], f"med:{med}"))
    for doctor, reason in DOCTORS:
        day, month, _ = date_parts(rng)
        hour = f"{rng.randint(8, 17)}:{rng.choice(['00', '15', '30', '45'])}"
        surname = pick(rng, SURNAMES)
        facts.append(Fact("health/appointments", [
            f"{doctor.capitalize()} appointment with Dr. {surname} on {day} {month} at {hour} ({reason}).",
            f"I'm seeing Dr. {surname}, my {doctor}, on {month} {day} at {hour} for a {reason}.",
        ], [f"When is my next visit to the {doctor}?", f"What time do I have to be at the {doctor}'s?"], f"doctor:{doctor}"))
    for pet, species, breed in PETS:
        age = rng.randint(1, 14)
        vet_day = pick(rng, ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"])
        facts.append(Fact("pets", [
            f"Our {species} {pet} is a {breed}, {age} years old.", f"{pet} is our {age}-year-old {breed}.",
        ], [f"What breed is {pet}?", f"How old is {pet}?"], f"pet:{pet}"))
        if rng.random() < 0.6:
            facts.append(Fact("pets", [
                f"{pet} has a vet check every {vet_day} of the first week of the month.",
                f"Vet visits for {pet} are on the first {vet_day} of each month.",
            ], [f"When does {pet} see the animal doctor?"], f"petvet:{pet}"))
    cities = rng.sample(CITIES, 44)
    for city in cities[:24]:
        day, month, _ = date_parts(rng)
        nights = rng.randint(2, 12)
        hotel = pick(rng, HOTELS)
        facts.append(Fact("travel/trips", [
            f"Trip to {city}: arriving {day} {month}, {nights} nights at {hotel}.",
            f"I'm travelling to {city} on {month} {day} for {nights} nights; staying at {hotel}.",
        ], [f"When am I off to {city} and for how long?", f"Where will I sleep in {city}?"], f"trip:{city}"))
    for city in cities[24:]:
        code, airline = AIRLINES[rng.randrange(len(AIRLINES))]
        number = f"{code}{rng.randint(100, 1999)}"
        day, month, _ = date_parts(rng)
        hour = f"{rng.randint(6, 22):02d}:{rng.choice(['05', '20', '35', '50'])}"
        facts.append(Fact("travel/flights", [
            f"Flight {number} ({airline}) to {city} departs on {day} {month} at {hour}.",
            f"My {airline} flight to {city}, {number}, leaves {month} {day} at {hour}.",
        ], [f"What is the flight number for my {city} trip?", f"At what time does my plane to {city} take off?"],
            f"flight:{city}"))
    for meeting, when in MEETINGS:
        facts.append(Fact("schedule", [
            f"The {meeting} is {when}.", f"{meeting.capitalize()}: {when}.",
        ], [f"When does the {meeting} take place?"], f"meeting:{meeting}"))
    for number, (category, texts, questions) in enumerate(SINGLETONS):
        facts.append(Fact(category, texts, questions, f"single:{number}"))
    return facts


def also_answering(fact: Fact, facts: list[Fact]) -> list[int]:
    """The fact a question was written for, plus any other that answers it: marriage is symmetric,
    so "Kevin is married to Ethan" answers "Who is Ethan's husband or wife?" as well."""
    gold = [fact.id]
    if fact.family == "spouse":
        gold += [other.id for other in facts
                 if other.family == "spouse" and other is not fact and re.search(rf"\b{fact.subject}\b", other.text)]
    return sorted(gold)


def related_pairs(rng: random.Random, facts: list[Fact], count: int) -> list[dict]:
    """Pairs of different facts that share a template: half "update" (same subject, other values),
    half "other" (another subject of the same kind)."""
    by_family: dict[str, list[Fact]] = {}
    for fact in facts:
        if fact.family != "single":
            by_family.setdefault(fact.family, []).append(fact)
    pairs = []
    families = sorted(name for name, members in by_family.items() if len(members) > 1)
    while len(pairs) < count:
        members = by_family[pick(rng, families)]
        fact, other = rng.sample(members, 2)
        template = rng.randrange(min(len(fact.texts), len(other.texts)))
        if len(pairs) % 2 == 0:
            changed = other.texts[template].replace(other.subject, fact.subject)
            if changed == fact.texts[template] or fact.subject not in changed:
                continue
            pairs.append({"kind": "update", "a": fact.texts[template], "b": changed})
        else:
            pairs.append({"kind": "other", "a": fact.texts[template], "b": other.texts[template]})
    return pairs


def main() -> None:
    rng = random.Random(SEED)
    facts = build(rng)
    rng.shuffle(facts)
    for number, fact in enumerate(facts, start=1):
        fact.id = number
        fact.stored = rng.randrange(len(fact.texts))

    questions = []
    for number, fact in enumerate(facts, start=1):  # one question per fact: ~1,000 keeps noise near 1.5 points
        questions.append({"id": number, "question": pick(rng, fact.questions), "gold": also_answering(fact, facts)})

    pairs = []
    for fact in rng.sample(facts, 300):
        first, second = rng.sample(fact.texts, 2)
        pairs.append({"kind": "paraphrase", "a": first, "b": second})
    pairs += related_pairs(rng, facts, 400)

    write(HERE / "facts.jsonl", [{"id": f.id, "category": f.category, "text": f.text} for f in facts])
    write(HERE / "questions.jsonl", questions)
    write(HERE / "dedup_pairs.jsonl", pairs)
    print(f"{len(facts)} facts, {len(questions)} questions, {len(pairs)} dedup pairs")


def write(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
