// Over 400 lines on purpose: data, not code — 64 queries, each with the notes and probe that justify its judgment.
/**
 * Judged queries over the State of the Union corpus (test/rag/sotu.ts), for recall@10 / MRR per search method.
 *
 * Each query paraphrases a topic that the speeches really discuss; `relevant` lists every address judged to discuss
 * it substantially (not only the best one). Judgments were made by keyword searches over all 233 addresses and by
 * reading the matching passages; `evidence` keeps the keyword probe so that test/rag/sotu-queries.test.ts can re-check
 * each judgment against the corpus: every relevant address matches the probe, and (when `min` is set) every address
 * matching it at least `min` times is judged relevant, so a clear mention elsewhere cannot have been overlooked.
 * Queries do not copy the speeches' wording (no run of 6 consecutive words in common), so lexical search has work to
 * do; the French ones (`lang: "fr"`) ask an English corpus in French, as users of the platform will.
 */

export interface SotuQuery {
  id: string;
  query: string;
  lang: "en" | "fr";
  /** Ids of the relevant addresses (see SotuSpeech.id). */
  relevant: string[];
  /** The passages or keywords that justify the judgment, and what was left out and why. */
  note: string;
  /** Keyword probe (case-insensitive regular expression) used to verify the judgment against the corpus. */
  evidence: { pattern: string; min?: number };
}

export const SOTU_QUERIES: SotuQuery[] = [
  // ── 18th century ──────────────────────────────────────────────────────────────────────────────────────────────
  {
    id: "whiskey-rebellion",
    query:
      "armed revolt by farmers in western Pennsylvania against the federal tax on distilled liquor, and the militia called out to put it down",
    lang: "en",
    relevant: ["1794-washington"],
    note: "1794: “the four western counties of Pennsylvania”, resistance to “the laws of excise”, militia of several States called into service. 1795 only mentions the pardon of “the misled” in one sentence.",
    evidence: { pattern: "western counties of Pennsylvania|laws of excise|acts of excise", min: 1 },
  },
  {
    id: "northwest-indian-war",
    query:
      "the frontier war with the tribes beyond the Ohio River: raids on settlers, peace overtures, army expeditions and finally a treaty",
    lang: "en",
    relevant: [
      "1790-washington",
      "1791-washington",
      "1792-washington",
      "1793-washington",
      "1794-washington",
      "1795-washington",
    ],
    note: "1790: “banditti of Indians from the northwest side of the Ohio”, “I have accordingly authorized an expedition”; 1791: expeditions “by the militia of Kentucky”, “the defense and security of the western frontiers”; 1792: “the Indian hostilities which have for some time past distressed our Northwestern frontier” have not ended; 1793: “every reasonable effort has been made to adjust the causes of dissension with the Indians north of the Ohio”; 1794: “the army under the command of General Wayne”; 1795: “the long, expensive, and distressing war ... with certain Indians northwest of the Ohio” ended by a treaty. 1796 only outlines Indian policy in peacetime.",
    evidence: { pattern: "north(west)?( side)? of the Ohio|Northwestern frontier|militia of Kentucky|General Wayne" },
  },
  {
    id: "quasi-war-france",
    query:
      "relations with revolutionary France break down over French attacks on American merchant ships, and special envoys are sent to Paris to settle the differences",
    lang: "en",
    relevant: ["1797-adams", "1798-adams", "1799-adams", "1800-adams"],
    note: "1797: “envoys extraordinary to the French Republic”, depredations; 1798: failure of the measures toward adjustment with France; 1799: new ministers nominated, sent to Paris; 1800: envoys received by the First Consul. 1796 mentions French cruisers injuring trade in the West Indies, but not the mission.",
    evidence: { pattern: "envoys|French Republic|French Government|First Consul" },
  },
  {
    id: "capital-moves-to-washington",
    query: "moving the seat of the national government from Philadelphia to the new federal city on the Potomac",
    lang: "en",
    relevant: ["1799-adams", "1800-adams"],
    note: "1799: seat of Government “transferred from Philadelphia to the District chosen for its permanent seat”, buildings in the city of Washington; 1800: Congress assembled “at the permanent seat of their Government”. 1791 only announces the ten-mile district chosen on the Potomac, years before the move.",
    evidence: {
      pattern:
        "transferred from Philadelphia|assembling of Congress at the permanent seat|removal of the seat of Government",
    },
  },
  // ── 19th century ──────────────────────────────────────────────────────────────────────────────────────────────
  {
    id: "tripoli-war",
    query:
      "guerre contre Tripoli : les corsaires barbaresques menacent le commerce américain et une escadre de frégates est envoyée en Méditerranée",
    lang: "fr",
    relevant: ["1801-jefferson", "1802-jefferson", "1803-jefferson", "1804-jefferson", "1805-jefferson"],
    note: "1801: Tripoli “had permitted itself to denounce war”, squadron of frigates sent into the Mediterranean; 1802: blockade of the harbor of Tripoli; 1803: small vessels to confine the Tripoline cruisers; 1804: reinforcements to “reduce the barbarians of Tripoli”; 1805: peace treaty, liberation of the prisoners. Later mentions of Tripoli are single sentences.",
    evidence: { pattern: "Tripol", min: 2 },
  },
  {
    id: "louisiana-purchase",
    query:
      "France agrees to sell the whole province west of the Mississippi, including the port at the river's mouth, and how the price will be paid",
    lang: "en",
    relevant: ["1803-jefferson"],
    note: "1803: “the property and sovereignty of all Louisiana ... have on certain conditions been transferred to the United States”, the $2 millions toward the price of New Orleans, the $13 millions added to the debt. 1804 only reports Spain's objections to the title withdrawn and the territory's temporary government.",
    evidence: { pattern: "all Louisiana|acquisition of Louisiana|sovereignty of New Orleans" },
  },
  {
    id: "lewis-and-clark",
    query:
      "an expedition up the Missouri river that crossed the continent to the Pacific and reported on its geography and native peoples",
    lang: "en",
    relevant: ["1806-jefferson"],
    note: "1806: “The expedition of Messrs. Lewis and Clarke for exploring the river Missouri ... descended the Columbia to the Pacific Ocean”. 1903 mentions Lewis and Clark in one sentence about the Louisiana purchase exposition.",
    evidence: { pattern: "Lewis and Clarke|Columbia to the Pacific" },
  },
  {
    id: "slave-trade-ban",
    query: "interdire l'importation d'esclaves africains dès que la Constitution le permettra",
    lang: "fr",
    relevant: ["1806-jefferson"],
    note: "1806: Congress may soon “withdraw the citizens of the United States from all further participation in those violations of human rights ... on the unoffending inhabitants of Africa” (the 1808 constitutional date). Later addresses discuss suppressing the trade at sea, not the ban on importation.",
    evidence: { pattern: "inhabitants of Africa" },
  },
  {
    id: "chesapeake-affair",
    query:
      "a British warship fires on an American frigate leaving port, kills crew members and seizes sailors, and the diplomatic fallout",
    lang: "en",
    relevant: ["1807-jefferson", "1808-jefferson", "1809-madison"],
    note: "1807: “the frigate Chesapeake ... was attacked ... had several of her crew killed and four taken away”; 1808: the discussions relating to the attack on the Chesapeake; 1809: British proposals on “the attack on the frigate Chesapeake” rejected.",
    evidence: { pattern: "frigate Chesapeake|board the Chesapeake" },
  },
  {
    id: "embargo-1808",
    query:
      "keeping American ships in port under a trade ban meant to pressure Britain and France into revoking their decrees against neutral commerce",
    lang: "en",
    relevant: ["1808-jefferson"],
    note: "1808: the act authorizing a suspension of “the several embargo laws”, British orders and French decrees, enforcement on the northern frontier. 1809 discusses the non-intercourse act that replaced it, not the embargo itself.",
    evidence: { pattern: "embargo", min: 3 },
  },
  {
    id: "monroe-doctrine",
    query:
      "the principle that the Western Hemisphere is closed to new European colonies and that the United States will oppose European interference there",
    lang: "en",
    relevant: ["1823-monroe", "1845-polk", "1901-roosevelt", "1904-roosevelt", "1905-roosevelt", "1906-roosevelt"],
    note: "1823: “the American continents ... are henceforth not to be considered as subjects for future colonization by any European powers”; 1845: Polk quotes and reasserts it for North America; 1901: “The Monroe Doctrine should be the cardinal feature...”; 1904: the corollary (international police power); 1905: long discussion of the doctrine and Santo Domingo; 1906: the doctrine and South America. 1870, 1902, 1903 and later mention it in a single sentence.",
    evidence: { pattern: "Monroe Doctrine|subjects for (future )?colonization|subject to colonization", min: 2 },
  },
  {
    id: "bank-deposits-removal",
    query:
      "the president takes the government's money out of the national bank, accusing it of using its funds to influence elections",
    lang: "en",
    relevant: ["1833-jackson", "1834-jackson"],
    note: "1833: the Bank “converted into a permanent electioneering engine”, removal of the deposits; 1834: the Bank “has become the scourge of the people”, its memorial on the removal of the deposits. 1835–1836 deal with winding up the Bank's stock and distributing the surplus.",
    evidence: { pattern: "electioneering|removal of the (public )?deposits|scourge of the people" },
  },
  {
    id: "independent-treasury",
    query:
      "after the banks stopped redeeming notes in gold and silver, keeping the government's revenue in its own vaults instead of private banks",
    lang: "en",
    relevant: ["1837-van-buren", "1838-van-buren", "1839-van-buren", "1840-van-buren"],
    note: "1837: provisions for “the collection, safe-keeping, and transfer of the public money” free of “dependence on the will of irresponsible” banks; 1838: resumption of specie payments without a national bank; 1839: “The suspension of specie payments in 1837 rendered the use of deposit banks ... a source rather of embarrassment”; 1840: “The new system established by Congress for the safe-keeping of the public money”. 1841 (Tyler) turns to forcing the banks to resume payments.",
    evidence: { pattern: "safe-keeping[^.]{0,40}public mone|specie payments|custody of the public mone", min: 5 },
  },
  {
    id: "texas-annexation",
    query: "admitting the independent republic of Texas into the Union despite Mexico's threats",
    lang: "en",
    relevant: ["1843-tyler", "1844-tyler", "1845-polk", "1846-polk"],
    note: "1843: Mexico threatens war over “the annexation of Texas”; 1844: the annexation treaty and Mexico's war on Texas; 1845: Texas accepts the joint resolution “for annexing Texas”; 1846: “The annexation of Texas ... constituted no just cause of offense to Mexico” (long argument). 1848 recalls the annexation in passing.",
    evidence: { pattern: "annex\\w*[^.]{0,80}Texas|Texas[^.]{0,80}annex", min: 3 },
  },
  {
    id: "oregon-boundary",
    query:
      "the dispute with Britain over the Pacific Northwest, ending the joint occupation, and where to draw the boundary",
    lang: "en",
    relevant: ["1845-polk"],
    note: "1845: negotiations “on the subject of the Oregon Territory”, the 1818 and 1827 conventions of joint occupation, notice to end them, the claims “to establish a permanent boundary between them westward of the Rocky Mountains”. 1848 recalls in a sentence that the title south of the forty-ninth degree “has been adjusted”; 1846–1848 otherwise ask for a territorial government.",
    evidence: {
      pattern:
        "Oregon[^.]{0,200}(Great Britain|British|boundary|joint occupation|forty-ninth)|(Great Britain|British|joint occupation)[^.]{0,200}Oregon",
      min: 4,
    },
  },
  {
    id: "mexican-war",
    query:
      "the war with Mexico: its causes, the military campaigns, and the peace treaty that ceded California and New Mexico",
    lang: "en",
    relevant: ["1846-polk", "1847-polk", "1848-polk"],
    note: "1846: causes of the war and campaigns (Mexico: 158 mentions); 1847: campaigns and terms of peace; 1848: the treaty of peace and the ceded territories. 1849 (Taylor) and 1868 (Johnson) only mention the war's expenses.",
    evidence: { pattern: "war with Mexico|Mexican war|treaty of peace[^.]{0,80}Mexico", min: 4 },
  },
  {
    id: "california-gold",
    query: "découverte de gisements d'or extraordinaires dans le territoire tout juste acquis sur le Pacifique",
    lang: "fr",
    relevant: ["1848-polk"],
    note: "1848: “The accounts of the abundance of gold in that territory are of such an extraordinary character...”, mines of the precious metals in California, a branch mint proposed.",
    evidence: { pattern: "abundance of gold|mines of the precious metals" },
  },
  {
    id: "bleeding-kansas",
    query:
      "les violences au Kansas entre partisans et adversaires de l'esclavage, et la constitution contestée du territoire",
    lang: "fr",
    relevant: ["1856-pierce", "1857-buchanan", "1858-buchanan", "1860-buchanan"],
    note: "1856: disorders in the Territory of Kansas; 1857 and 1858: the Lecompton constitution and Kansas's admission (25 and 28 mentions); 1860: looks back on “a revolutionary government ... the Topeka constitution” and civil war in Kansas. 1855 and 1859 mention Kansas in passing.",
    evidence: { pattern: "Kansas", min: 10 },
  },
  {
    id: "secession-crisis",
    query:
      "southern states threatening to leave the Union after the presidential election, and whether the federal government may coerce a state that secedes",
    lang: "en",
    relevant: ["1860-buchanan"],
    note: "1860: “disunion will become inevitable”, “It is alleged as one cause for immediate secession...”, the right of secession and coercion of a State. 1861 (Lincoln) addresses the war already under way; 1862 recalls “the total inadequacy of disunion as a remedy” to argue for compensated emancipation.",
    evidence: { pattern: "secession|secede|disunion", min: 6 },
  },
  {
    id: "emancipation",
    query:
      "freeing the slaves: paying states that agree to abolish slavery gradually, and the proclamation freeing slaves in rebel territory",
    lang: "en",
    relevant: ["1862-lincoln", "1863-lincoln"],
    note: "1862: “compensated emancipation” proposal (articles of amendment, compensation to States); 1863: results of “the preliminary emancipation proclamation” and the final proclamation. 1864 and 1865 turn to the constitutional amendment (see thirteenth-amendment); 1872 (Grant) is about Spain's emancipation law for Cuba.",
    evidence: { pattern: "emancipation", min: 4 },
  },
  {
    id: "thirteenth-amendment",
    query: "a constitutional amendment abolishing slavery everywhere in the country and its ratification by the states",
    lang: "en",
    relevant: ["1864-lincoln", "1865-johnson"],
    note: "1864: “a proposed amendment of the Constitution abolishing slavery throughout the United States passed the Senate, but failed ... in the House”; 1865: ratification of the amendment “which provides for the abolition of slavery forever”.",
    evidence: { pattern: "amendment[^.]{0,120}slavery|slavery[^.]{0,120}amendment" },
  },
  {
    id: "assassinated-predecessor",
    query: "a new president opens his first message by mourning the predecessor who was murdered",
    lang: "en",
    relevant: ["1865-johnson", "1881-arthur", "1901-roosevelt"],
    note: "1865: “the death of the late President by an act of parricidal treason”; 1881: “An appalling calamity ... the loved and illustrious citizen who was but lately the head of the nation” (Garfield); 1901: “President McKinley was shot by an anarchist”. 1964 (after Kennedy) only invokes his programs; 1850, 1923 and 1945 follow deaths that were not murders.",
    evidence: { pattern: "parricidal|illustrious citizen who was but lately|McKinley was shot" },
  },
  {
    id: "santo-domingo-annexation",
    query: "President Grant's failed treaty to annex the Dominican Republic in the Caribbean",
    lang: "en",
    relevant: ["1870-grant", "1876-grant"],
    note: "1870: “a treaty for the annexation of the Republic of San Domingo ... failed to receive the requisite” two-thirds, long argument for it; 1876: Grant defends the rejected treaty for “the annexation of Santo Domingo”. 1873 transmits a request for a protectorate in one sentence; 1905 is about the customs receivership, a different matter.",
    evidence: { pattern: "annexation of (the Republic of )?(San|Santo) Domingo|acquisition of San Domingo" },
  },
  {
    id: "alabama-claims",
    query:
      "Britain's liability for Confederate raiders built in British shipyards, settled by an international arbitration tribunal in Switzerland",
    lang: "en",
    relevant: ["1870-grant", "1871-grant", "1872-grant", "1873-grant"],
    note: "1870: no adjustment of “the claims against Great Britain growing out of the course adopted by that Government during the rebellion”; 1871: the tribunal at Geneva under the treaty of Washington; 1872: the award; 1873: payment of the Geneva award and losses from “the Alabama, the Florida, or the Shenandoah”.",
    evidence: { pattern: "Geneva|claims against Great Britain" },
  },

  {
    id: "venezuela-boundary",
    query:
      "the border quarrel between Venezuela and the neighbouring British colony, and American insistence that it go to arbitration",
    lang: "en",
    relevant: ["1895-cleveland", "1896-cleveland", "1899-mckinley"],
    note: "1895: “the boundary dispute between Great Britain and the Republic of Venezuela concerning the limits of British Guiana”, the US protest; 1896: Britain and Venezuela agree to submit the whole controversy to arbitration; 1899: the arbitration commission's award fixing the line. 1891, 1893 and 1894 only note in a sentence that the dispute is unsettled.",
    evidence: { pattern: "Guiana|Venezuelan boundary|boundary[^.]{0,60}Venezuela", min: 3 },
  },
  {
    id: "hawaii-annexation",
    query:
      "overthrow of the island kingdom's queen in the Pacific and the treaty to make the islands part of the United States",
    lang: "en",
    relevant: ["1893-cleveland", "1897-mckinley", "1898-mckinley"],
    note: "1893: the Government of Hawaii “suddenly overthrown”, annexation treaty withdrawn, Blount's investigation; 1897: treaty “having for its purpose the incorporation of the Hawaiian Islands”; 1898: annexation by joint resolution. 1894 notes the new government in two sentences; 1900 reports on the Territory's government.",
    evidence: { pattern: "annex\\w*[^.]{0,120}(Hawai|islands)|(Hawai|islands)[^.]{0,120}annex|overthrown", min: 3 },
  },
  {
    id: "maine-and-war-with-spain",
    query: "the battleship blown up in Havana harbor and the war with Spain over Cuba that followed",
    lang: "en",
    relevant: ["1898-mckinley"],
    note: "1898: “the destruction of the battle ship Maine while rightfully lying in the harbor of Havana”, the joint resolution, Spain breaking off relations, the campaigns. 1897 discusses the Cuban insurrection before the war; 1899 the peace treaty and the Philippines; 1900 and 1901 name the war with Spain in passing.",
    evidence: { pattern: "battle ?ship Maine|war with Spain", min: 3 },
  },
  {
    id: "panama-canal-treaty",
    query:
      "the revolt that separated Panama from Colombia and the treaty giving the United States a zone to dig the isthmian canal",
    lang: "en",
    relevant: ["1903-roosevelt"],
    note: "1903: the revolution of November 3 on the Isthmus, recognition of the Republic of Panama, the Hay–Bunau-Varilla treaty (Panama: 43 mentions). 1902 and 1904–1912 refer to the canal's construction, the Zone's government and tolls (1912: 24 mentions), not to the revolution and treaty.",
    evidence: { pattern: "Panama", min: 30 },
  },
  {
    id: "war-on-austria-hungary",
    query: "asking Congress to extend the state of war to Germany's ally ruled from Vienna",
    lang: "en",
    relevant: ["1917-wilson"],
    note: "1917: “I, therefore, very earnestly recommend that the Congress immediately declare the United States in a state of war with Austria-Hungary”.",
    evidence: { pattern: "Austria-Hungary", min: 4 },
  },
  // ── 20th century ──────────────────────────────────────────────────────────────────────────────────────────────
  {
    id: "four-freedoms",
    query:
      "a future world founded on four essential human liberties: of expression, of worship, from want and from fear",
    lang: "en",
    relevant: ["1941-roosevelt", "1942-roosevelt", "1943-roosevelt"],
    note: "1941: “The first is freedom of speech and expression ... The fourth is freedom from fear”; 1942 restates the four objectives; 1943: “Two years ago I spoke in my Annual Message of four freedoms” and discusses each. 1944 and 1946 name only some of them in passing.",
    evidence: { pattern: "four freedoms|freedom from want|freedom from fear" },
  },
  {
    id: "pearl-harbor",
    query: "l'attaque surprise japonaise contre la flotte américaine dans le Pacifique un dimanche matin de décembre",
    lang: "fr",
    relevant: ["1942-roosevelt"],
    note: "1942: “peaceful Sunday morning-December 7, 1941 ... an American outpost in the Pacific”, Japan's scheme of conquest. Later addresses mention Pearl Harbor in a sentence.",
    evidence: { pattern: "Sunday morning|Pearl Harbor" },
  },
  {
    id: "economic-bill-of-rights",
    query:
      "a second set of guaranteed rights for every citizen: a useful job, decent housing, medical care, education and protection in old age",
    lang: "en",
    relevant: ["1944-roosevelt", "1945-roosevelt"],
    note: "1944: “We have accepted, so to speak, a second Bill of Rights ... The right to a useful and remunerative job”; 1945: “I set forth what I considered to be an American economic bill of rights” and restates it.",
    evidence: { pattern: "second Bill of Rights|economic bill of rights" },
  },
  {
    id: "marshall-plan",
    query: "l'aide économique américaine à la reconstruction de l'Europe occidentale après la Seconde Guerre mondiale",
    lang: "fr",
    relevant: ["1948-truman", "1950-truman", "1951-truman", "1953-truman"],
    note: "1948: “support the program for recovery developed by the countries of Europe”; 1950: “we must continue our support of the European recovery program”; 1951: “In Europe the Marshall plan has had an electrifying result”; 1953: “the grand design of the Marshall Plan permitted the people of Britain and France and Italy ... to lift themselves”. 1949 names the European recovery program once.",
    evidence: { pattern: "Marshall plan|European recovery|recovery developed by the countries of Europe", min: 2 },
  },
  {
    id: "korean-war",
    query: "American and United Nations troops fighting communist aggression on the Korean peninsula",
    lang: "en",
    relevant: ["1951-truman", "1952-truman", "1953-truman", "1953-eisenhower"],
    note: "1951: “American soldiers are fighting a bitter campaign in Korea”; 1952: the UN forces turned back the Chinese Communist invasion; 1953 (Truman): the decision to resist in Korea; 1953 (Eisenhower): “the war in Korea ... the most painful phase of Communist aggression”. 1954 notes the fighting has ended; later mentions concern North Korea's weapons.",
    evidence: { pattern: "Korea" },
  },
  {
    id: "missile-gap",
    query:
      "the Soviets may be ahead in long-range rockets after orbiting the first artificial moons, and how to reorganize defense and science education",
    lang: "en",
    relevant: ["1958-eisenhower"],
    note: "1958: “we are probably somewhat behind the Soviets in some areas of long-range ballistic missile development”, earth satellites, defense reorganization, science education. 1959 and 1960 report missile progress.",
    evidence: { pattern: "ballistic missile|satellite", min: 7 },
  },
  {
    id: "moon-landing-goal",
    query: "objectif national d'envoyer un astronaute américain sur la Lune avant la fin de la décennie",
    lang: "fr",
    relevant: ["1962-kennedy", "1964-johnson"],
    note: "1962: “this effort, which we hope will place one of our citizens on the moon”; 1964: “an expedition to the moon in this decade”. 1961 (Eisenhower) foresees landing instruments, not men; 1969–2021 look back on the landing; 2020 is about returning (Artemis).",
    evidence: { pattern: "on the moon|to the moon" },
  },
  {
    id: "peace-corps",
    query: "sending young American volunteers abroad to teach and help in developing countries",
    lang: "en",
    relevant: ["1961-kennedy", "1962-kennedy", "1963-kennedy"],
    note: "1961: “the formation of a National Peace Corps”; 1962: “A newly conceived Peace Corps is winning friends and helping people in fourteen countries”; 1963: “the overseas success of our Peace Corps volunteers”, growth to 9,000. 1964 and 1966 mention it in a clause; 1993 cites it as the model for national service at home.",
    evidence: { pattern: "Peace Corps" },
  },
  {
    id: "alliance-for-progress",
    query:
      "l'Alliance pour le progrès : un partenariat de dix ans avec les républiques d'Amérique latine pour la croissance et les réformes sociales",
    lang: "fr",
    relevant: [
      "1961-kennedy",
      "1962-kennedy",
      "1963-kennedy",
      "1964-johnson",
      "1965-johnson",
      "1966-johnson",
      "1967-johnson",
    ],
    note: "1961: “we have pledged a new alliance for progress-alianza para progreso”; 1962: “The Alliance for Progress is being rapidly transformed from proposal to program”, a $3 billion fund; 1963: “a vast cooperative effort to achieve economic growth and social progress throughout the Americas”; 1964: “a stronger Alliance for Progress”; 1965: “enlarge our commitment to the Alliance for Progress”; 1966: “help strengthen the Alliance for Progress”; 1967: “The Alliance for Progress moved dramatically forward”.",
    evidence: { pattern: "Alliance for Progress", min: 1 },
  },
  {
    id: "war-on-poverty",
    query:
      "declaring an all-out national campaign to wipe out poverty in America, and keeping that federal effort going",
    lang: "en",
    relevant: ["1964-johnson", "1965-johnson", "1966-johnson", "1967-johnson", "1968-johnson", "1969-johnson"],
    note: "1964: “This administration today, here and now, declares unconditional war on poverty in America”; 1965: “doubling the war against poverty this year”; 1966: “speed up the war on poverty”; 1967: “a declaration of war on poverty ... we shall not rest”; 1968: “Fully funding all of the $2.18 billion poverty program”; 1969: the commitment “to end poverty”, the antipoverty program to continue. Other presidents discuss poverty but not this program (1988: “declared war on poverty, and poverty won” is a one-line jibe).",
    evidence: { pattern: "war (on|against) (human )?poverty|antipoverty|poverty program|attack poverty" },
  },
  {
    id: "medicare",
    query: "hospital and medical coverage for the elderly financed through the social security system",
    lang: "en",
    relevant: ["1961-kennedy", "1962-kennedy", "1964-johnson", "1965-johnson"],
    note: "1961: “Measures to provide health care for the aged under Social Security”; 1962: “the enactment under the social security system of health insurance for the aged”; 1964: “We must provide hospital insurance for our older citizens”; 1965: “hospital care under social security”.",
    evidence: {
      pattern:
        "(health|hospital) (care|insurance)[^.]{0,80}(aged|older|elderly|social security)|(aged|elderly)[^.]{0,60}hospital care",
    },
  },
  {
    id: "vietnam-war",
    query:
      "why American troops are fighting in Southeast Asia to defend the South against infiltration from the communist North",
    lang: "en",
    relevant: ["1966-johnson", "1967-johnson", "1968-johnson"],
    note: "1966: “a brutal and bitter conflict in Vietnam” discussed at length (why we are there, aggression from the North); 1967: “the war in Vietnam”, the troops sent, its cost; 1968: elections in Vietnam, “The enemy continues to pour men” in. 1963 and 1969 mention Vietnam among other issues (1969: hopes for the Paris talks); 1970–1973 are about ending it.",
    evidence: { pattern: "Viet-?\\s?nam" },
  },
  {
    id: "indian-removal",
    query:
      "relocating the Cherokee, Choctaw, Creek and other eastern tribes to lands set aside for them beyond the Mississippi",
    lang: "en",
    relevant: [
      "1829-jackson",
      "1830-jackson",
      "1831-jackson",
      "1832-jackson",
      "1833-jackson",
      "1834-jackson",
      "1836-jackson",
      "1837-van-buren",
      "1838-van-buren",
      "1840-van-buren",
    ],
    note: "1829: tribes advised “to emigrate beyond the Mississippi”; 1830: “the removal of the Indians beyond the white settlements is approaching to a happy consummation”; 1831: Chickasaws and Choctaws “agreed to remove beyond the Mississippi River”; 1832: removal “the only hope of their ultimate prosperity”; 1833: treaties “for the migration ... West of the Mississippi”, “a general removal”; 1834: removal of the Creeks and Seminoles, the Cherokees; 1836: Creeks' “speedy removal to the country assigned them West of the Mississippi”; 1837: “The system of removing the Indians west of the Mississippi”; 1838: “the entire removal of the Cherokee Nation”; 1840: “The removal of the Indians from within our settled borders is nearly completed”. 1839 only counts its cost; later removals (1850s–1890s) concern western tribes.",
    evidence: {
      pattern:
        "remov\\w*[^.]{0,100}(Indian|tribe|Cherokee|Creek|Choctaw|Seminole)|(Indian|tribe|Cherokee|Creek|Choctaw|Seminole)[^.]{0,100}remov|(emigrat|migrat)\\w*[^.]{0,60}(west|beyond) (of )?the Mississippi|remove beyond the Mississippi",
    },
  },
  {
    id: "yellow-fever-1878",
    query:
      "a deadly fever epidemic in New Orleans and along the lower Mississippi, relief for the stricken towns and a national quarantine",
    lang: "en",
    relevant: ["1878-hayes"],
    note: "1878: “a fatal pestilence (the yellow fever) in some portions of the Southern States ... appeared as an epidemic at New Orleans”, relief measures and a national quarantine system. 1880 mentions an international notification system for epidemics in a sentence.",
    evidence: { pattern: "yellow fever|epidemic", min: 4 },
  },
  {
    id: "boxer-uprising",
    query:
      "foreign diplomats besieged in the Chinese capital by an anti-foreign sect, and the international relief expedition",
    lang: "en",
    relevant: ["1900-mckinley"],
    note: "1900: “The sect, commonly styled the Boxers”, the legations in Peking besieged, the relief expedition and negotiations (Peking: 15 mentions). 1901 mentions the new legation quarter in a sentence.",
    evidence: { pattern: "Boxers|legations|Peking", min: 5 },
  },
  {
    id: "soviet-invasion-afghanistan",
    query:
      "Moscow sends its army into Afghanistan, and Washington answers with trade restrictions and a boycott of the Moscow Olympic games",
    lang: "en",
    relevant: ["1980-carter", "1981-carter"],
    note: "1980: “massive Soviet troops are attempting to subjugate ... the people of Afghanistan”, restraints on trade, no Olympic team to Moscow; 1981 (written message): the Soviet invasion of Afghanistan and the sanctions (14 mentions). Reagan (1982–1988) backs the Afghan resistance in a few sentences.",
    evidence: { pattern: "Soviet[^.]{0,80}Afghanistan|Afghanistan[^.]{0,80}Soviet", min: 3 },
  },
  {
    id: "iran-hostages",
    query: "les otages américains détenus à l'ambassade à Téhéran et les efforts pour obtenir leur libération",
    lang: "fr",
    relevant: ["1980-carter", "1981-carter"],
    note: "1980: “to preserve the lives of the American hostages and to secure ... their safe release”; 1981: “52 American hostages are being held in Iran against international law”. Other mentions of hostages concern Lebanon, Beirut or single phrases.",
    evidence: { pattern: "hostages?", min: 3 },
  },
  {
    id: "egypt-israel-peace",
    query:
      "the settlement Washington brokered to end the state of war between Egypt and Israel, following the Camp David talks",
    lang: "en",
    relevant: ["1979-carter", "1980-carter", "1981-carter"],
    note: "1979: “the precious opportunity for lasting peace between Israel and Egypt will not be lost”; 1980: “The peace treaty between Egypt and Israel is a notable achievement”, Israel's withdrawal from the Sinai; 1981: “the peace process in the Middle East established at Camp David and by the Peace Treaty between Egypt and Israel”. 1983 refers once to “the peace process begun so promisingly at Camp David”; 1992's Camp David is a meeting with Yeltsin.",
    evidence: { pattern: "Egypt and Israel|Israel and Egypt|Egyptian-Israeli", min: 1 },
  },
  {
    id: "strategic-defense-initiative",
    query:
      "a research program for a non-nuclear shield that could destroy incoming ballistic missiles and make nuclear arms obsolete",
    lang: "en",
    relevant: ["1985-reagan", "1986-reagan", "1987-reagan", "1988-reagan", "1991-bush", "1992-bush"],
    note: "1985: “a Strategic Defense Initiative aimed ultimately at finding a nonnuclear defense against ballistic missiles”; 1986: “A security shield can one day render nuclear weapons obsolete”; 1987: “SDI will go forward”; 1988: SDI funding defended; 1991: SDI “refocused on providing protection from limited ballistic missile strikes”; 1992: “I urge you again to pass the Strategic Defense Initiative”. 1989 and 1990 name it once in a list.",
    evidence: {
      pattern: "Strategic Defense Initiative|\\bSDI\\b|security shield|defense against ballistic missiles",
      min: 2,
    },
  },
  {
    id: "challenger-disaster",
    query: "tribute to the seven crew members killed when the space shuttle exploded, and the space program going on",
    lang: "en",
    relevant: ["1986-reagan"],
    note: "1986: “We paused together to mourn and honor the valor of our seven Challenger heroes ... We're going forward with our shuttle flights”.",
    evidence: { pattern: "Challenger heroes|brave seven" },
  },
  {
    id: "end-of-cold-war",
    query:
      "the collapse of communist rule in Eastern Europe and the Soviet Union, and America's victory in the long East–West standoff",
    lang: "en",
    relevant: ["1990-bush", "1992-bush"],
    note: "1990: “it's the Wall that's history”, “with communism crumbling”; 1992: “communism died this year”, “America won the cold war”. 1991 says so in two sentences before turning to the Gulf; Clinton's addresses speak of the post–Cold War world.",
    evidence: { pattern: "communism (crumbling|died)|Berlin Wall|the Wall that|won the cold war" },
  },
  {
    id: "gulf-war",
    query: "Iraq's invasion of a small oil-rich neighbour and the coalition that drove its army out",
    lang: "en",
    relevant: ["1991-bush", "1992-bush"],
    note: "1991: “Saddam Hussein's unprovoked invasion ... 12 United Nations resolutions”, forces from 28 countries; 1992: “Operation Desert Storm ... We liberated Kuwait”.",
    evidence: { pattern: "Kuwait|Desert Storm", min: 3 },
  },
  {
    id: "human-genome",
    query: "scientists decoding the complete human genetic blueprint with federal research money",
    lang: "en",
    relevant: ["1997-clinton", "2000-clinton"],
    note: "1997: “The human genome project is now decoding the genetic mysteries of life”; 2000: “researchers will complete the first draft of the entire human genome ... Federal tax dollars have funded much of this research”. 2013 and 2015 cite the finished map once as a past success.",
    evidence: { pattern: "genome", min: 2 },
  },
  // ── 21st century ──────────────────────────────────────────────────────────────────────────────────────────────
  {
    id: "homeland-security",
    query:
      "renforcer la sécurité du territoire après les attentats du 11 septembre : nouveau ministère, contrôles aux frontières et dans les aéroports",
    lang: "fr",
    relevant: ["2002-bush", "2003-bush", "2004-bush", "2005-bush"],
    note: "2002: “a sustained strategy of homeland security ... bioterrorism, emergency response, airport and border security”; 2003: “created the Department of Homeland Security”, security at borders and ports, airport screeners; 2004: “our new Homeland Security Department are patrolling our coasts and borders”, the PATRIOT Act; 2005: “We've created a new department of Government to defend our homeland”. Later mentions are single phrases.",
    evidence: { pattern: "homeland" },
  },
  {
    id: "iraq-weapons",
    query:
      "Iraq's dictator building chemical, biological and nuclear weapons in defiance of United Nations inspectors, and the threat of force to disarm him",
    lang: "en",
    relevant: ["1998-clinton", "1999-clinton", "2002-bush", "2003-bush", "2004-bush"],
    note: "1998: “Saddam Hussein has spent the better part of this decade ... developing nuclear, chemical, and biological weapons”, the inspectors; 1999: “Iraq has defied its obligations to destroy its weapons of terror”, Desert Fox; 2002: “The Iraqi regime has plotted to develop anthrax and nerve gas and nuclear weapons”; 2003: the case for disarming Saddam Hussein (weapons of mass destruction: 11 mentions); 2004: “the dictator's weapons of mass destruction programs would continue to this day”. 1991 is about Kuwait; 2005–2008 about the occupation.",
    evidence: { pattern: "Saddam|Iraq" },
  },
  {
    id: "aids-relief-africa",
    query: "a multibillion-dollar American program to treat and prevent HIV in the poorest African countries",
    lang: "en",
    relevant: ["2003-bush", "2007-bush", "2008-bush"],
    note: "2003: “tonight I propose the Emergency Plan for AIDS Relief” (South African doctor's story); 2007: “Because you funded the Emergency Plan for AIDS Relief ... especially on the continent of Africa”; 2008: “our Emergency Plan for AIDS Relief is treating 1.4 million people”, double the commitment. 2006 mentions fighting AIDS abroad in one sentence; 1997, 2000 and 2019 are about research or HIV at home.",
    evidence: { pattern: "Emergency Plan for AIDS Relief|HIV/ ?AIDS, especially on the continent of Africa" },
  },
  {
    id: "financial-crisis-2009",
    query:
      "rescuing the collapsing banking system and a stimulus package to put people back to work during the deep recession",
    lang: "en",
    relevant: ["2009-obama", "2010-obama"],
    note: "2009: the recovery plan “that would put people back to work”, the plan to restore credit and stabilize banks; 2010: “a financial system on the verge of collapse”, “we all hated the bank bailout”, the Recovery Act. 2012 mentions a fee on “banks that were rescued” in a sentence.",
    evidence: {
      pattern: "recovery plan|Recovery Act|bank bailout|financial system|banks?[^.]{0,60}(rescue|bailout|bail out)",
      min: 5,
    },
  },
  {
    id: "bin-laden-killed",
    query: "the special forces raid that killed the al-Qaeda leader behind the September 11 attacks",
    lang: "en",
    relevant: ["2012-obama", "2021-biden"],
    note: "2012: “Usama bin Laden is not a threat to this country”, “the flag that the SEAL team took with them on the mission to get bin Laden”; 2021: “we delivered justice to bin Laden”. 2006–2008 quote him alive; 2016 says “just ask Usama bin Laden” in one sentence.",
    evidence: { pattern: "bin Laden" },
  },
  {
    id: "cuba-opening",
    query:
      "ending decades of isolating the communist island ninety miles off Florida and restoring diplomatic ties with Havana",
    lang: "en",
    relevant: ["2015-obama", "2016-obama"],
    note: "2015: “In Cuba, we are ending a policy that was long past its expiration date”; 2016: “Fifty years of isolating Cuba had failed to promote democracy ... we restored diplomatic relations”.",
    evidence: { pattern: "isolating Cuba|In Cuba, we are ending|shift in Cuba policy", min: 1 },
  },
  {
    id: "opioid-epidemic",
    query: "the wave of deaths from opioid painkillers, heroin and fentanyl overdoses",
    lang: "en",
    relevant: ["2018-trump", "2019-trump", "2020-trump"],
    note: "2018: “the terrible crisis of opioid and drug addiction ... 64,000 Americans to drug overdoses”; 2019: legislation “to confront the opioid crisis”, fentanyl crossing the border; 2020: “we are curbing the opioid epidemic — drug overdose deaths declined”. 2021 lists “investments to address the opioid crisis” in one clause.",
    evidence: { pattern: "opioid|overdose|fentanyl", min: 2 },
  },
  {
    id: "border-wall",
    query: "building a physical barrier along the southern frontier with Mexico to stop illegal crossings",
    lang: "en",
    relevant: ["2017-trump", "2018-trump", "2019-trump", "2020-trump"],
    note: "2017: “we will soon begin the construction of a great, great wall along our southern border”; 2018: “building a great wall on the southern border”; 2019: “a new physical barrier, or wall”, “see-through steel barrier” (long); 2020: “a long, tall, and very powerful wall is being built”.",
    evidence: {
      pattern: "\\bwall\\b[^.]{0,80}border|border[^.]{0,80}\\bwall\\b|steel barrier|as the wall goes up",
      min: 1,
    },
  },
  {
    id: "space-force",
    query: "creating a new branch of the armed forces devoted to space",
    lang: "en",
    relevant: ["2020-trump"],
    note: "2020: “we created a new branch of the United States Armed Forces, the Space Force”, the first since the Air Force (3 mentions).",
    evidence: { pattern: "Space Force", min: 1 },
  },
  {
    id: "watergate",
    query: "le scandale du Watergate : le président demande de tourner la page après un an d'enquêtes",
    lang: "fr",
    relevant: ["1974-nixon"],
    note: "1974: “I believe the time has come to bring that investigation and the other investigations of this matter to an end. One year of Watergate is enough.”",
    evidence: { pattern: "Watergate", min: 1 },
  },
  {
    id: "covid-pandemic",
    query: "la pandémie de COVID-19 : campagne de vaccination de masse et plan de relance pour les familles",
    lang: "fr",
    relevant: ["2021-biden"],
    note: "2021: the pandemic, “220 million COVID shots” in 100 days, the American Rescue Plan (vaccin*: 17 mentions). 2020 mentions the coronavirus outbreak in China in one sentence.",
    evidence: { pattern: "vaccin|pandemic|COVID", min: 3 },
  },
  {
    id: "capitol-attack",
    query: "the violent mob that stormed the Capitol and the test it posed to democracy",
    lang: "en",
    relevant: ["2021-biden"],
    note: "2021: “the images of a violent mob assaulting this Capitol, desecrating our democracy ... The insurrection was an existential crisis”.",
    evidence: { pattern: "mob (that )?assault\\w* (this|the) Capitol" },
  },
];
