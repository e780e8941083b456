/**
 * The languages of full-text search: one PostgreSQL configuration `passerelle_<language>` each, created by the
 * collections migration. Here rather than in the migration, so that the serving path reads the list without
 * loading the migrations (and MikroORM with them).
 */
export const TEXT_SEARCH_LANGUAGES = [
  "simple",
  "french",
  "english",
  "german",
  "italian",
  "spanish",
  "portuguese",
  "dutch",
] as const;
