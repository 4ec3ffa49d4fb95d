import { Module } from '@nestjs/common';
import { StreamModule } from '../stream/stream.module';
import { SseController } from './sse.controller';
import { SseService } from './sse.service';

@Module({
  imports: [StreamModule],
  controllers: [SseController],
  providers: [SseService],
  exports: [SseService],
})
export class SseModule {}
