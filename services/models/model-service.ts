import type { ServiceImpl } from "@connectrpc/connect";
import type { ModelService } from "../../gen/passerelle/models/v1/model_service_pb.js";
import type { ModelDeps } from "./deps.js";
import { createModelHandlers } from "./model-handlers.js";
import { createProviderHandlers } from "./provider-handlers.js";

/** ModelService: the models a caller may use, and the admin API of models, providers and grants. */
export function createModelService(deps: ModelDeps): ServiceImpl<typeof ModelService> {
  return {
    ...createModelHandlers(deps),
    ...createProviderHandlers(deps),
  };
}
