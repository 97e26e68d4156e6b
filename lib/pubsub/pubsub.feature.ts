import { defineFeature } from '../core/feature.js';
import { OnMessageExplorer } from './on-message.explorer.js';
import { PUBSUB_OPTIONS, type PubSubOptions } from './pubsub.options.js';
import { resolvePubSubOptions } from './pubsub.options-validator.js';
import { PubSubService } from './pubsub.service.js';

/** Pub/sub: `PubSubService` and `@OnMessage`, with the `pubsub` section. */
export const pubsubFeature = defineFeature({
  name: 'pub/sub',
  section: { name: 'pubsub', token: PUBSUB_OPTIONS, resolve: (given: PubSubOptions | undefined) => resolvePubSubOptions(given) },
  providers: [PubSubService, OnMessageExplorer],
  exports: [PubSubService],
});
