import { SetMetadata, UseInterceptors } from '@nestjs/common';
import { IdempotencyInterceptor } from './idempotency.interceptor.js';
import { IDEMPOTENT_ROUTE, type IdempotentOptions } from './idempotency.options.js';
import { checkIdempotentOptions } from './idempotency.options-validator.js';

/**
 * Makes a POST, PUT or PATCH handler (or every one of a controller) idempotent with the
 * `Idempotency-Key` header: a request with a key runs once, and repeats within the TTL get its
 * response replayed byte for byte (`Idempotent-Replayed: true`); a repeat while the first still
 * runs gets 409 with `Retry-After`, the key reused for a different request 422. Options override
 * the module's `idempotency` options for this route; they are checked when the class is loaded.
 *
 * @example
 * @Post('payments')
 * @Idempotent({ required: true })
 * pay(@Body() payment: NewPayment) { ... }
 */
export function Idempotent(options: IdempotentOptions = {}): ClassDecorator & MethodDecorator {
  return ((target: object, propertyKey?: string | symbol, descriptor?: PropertyDescriptor) => {
    const className = descriptor ? (target as { constructor: { name: string } }).constructor.name : (target as { name: string }).name;
    const where = `@Idempotent on ${className}${descriptor ? `.${String(propertyKey)}` : ''}`;
    const checked = checkIdempotentOptions(options, where);
    if (descriptor) {
      SetMetadata(IDEMPOTENT_ROUTE, checked)(target, propertyKey!, descriptor);
      UseInterceptors(IdempotencyInterceptor)(target, propertyKey!, descriptor);
      return descriptor;
    }
    SetMetadata(IDEMPOTENT_ROUTE, checked)(target as () => void);
    UseInterceptors(IdempotencyInterceptor)(target as () => void);
  }) as ClassDecorator & MethodDecorator;
}
