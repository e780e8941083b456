import { UniqueConstraintViolationException } from "@mikro-orm/core";
import { alreadyExists } from "../platform/errors.js";

/**
 * Translates the constraint violations the schema enforces into Connect errors (the original stays as `cause`).
 * `model_name`'s primary key is the shared namespace of names and aliases.
 */
export async function guard<T>(fn: () => Promise<T>, names?: { name?: string }): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof UniqueConstraintViolationException) {
      const { constraint, detail } = err as unknown as { constraint?: string; detail?: string };
      if (constraint?.startsWith("model_name") || constraint === "model_name_unique") {
        const taken = /=\((.*)\) already exists/.exec(detail ?? "")?.[1];
        const param = taken !== undefined && names?.name !== undefined && taken !== names.name ? "aliases" : "name";
        throw alreadyExists(
          taken === undefined
            ? "A model already uses this name or alias."
            : `The name '${taken}' is already used by a model, as its name or an alias.`,
          "MODEL_NAME_TAKEN",
          param,
        );
      }
      if (constraint?.startsWith("provider_")) {
        throw alreadyExists(
          "This model already has a provider with this URL and upstream model.",
          "PROVIDER_ALREADY_EXISTS",
          "url",
        );
      }
    }
    throw err;
  }
}
