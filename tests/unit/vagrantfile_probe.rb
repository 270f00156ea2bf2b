# Evaluates a rendered Vagrantfile against a stand-in for Vagrant's configuration
# objects and prints, as JSON, every setting it makes, by provider block:
#   ruby vagrantfile_probe.rb path/to/Vagrantfile
# Provider blocks run (with their `override`); trigger blocks are recorded but never
# run, so nothing the Vagrantfile would do at `vagrant up` (docker network create,
# docker load) happens here.
require "json"

class Recorder
  attr_reader :values, :calls

  def initialize
    @values = {}   # "vm.box_check_update" => false
    @calls = []    # ["vm.network", ["forwarded_port"], {guest: 5000, ...}]
    @children = {}
  end

  def child(name)
    @children[name] ||= Recorder.new
  end

  def to_h
    out = { "values" => @values, "calls" => @calls }
    @children.each { |name, rec| out[name] = rec.to_h }
    out
  end

  def respond_to_missing?(*) = true

  def method_missing(name, *args, **kwargs, &block)
    name = name.to_s
    if name.end_with?("=")
      @values[name.chomp("=")] = args.first
      return args.first
    end
    if args.empty? && kwargs.empty? && block.nil?
      return @values[name] if @values.key?(name)
      return child(name)
    end
    @calls << [name, args, kwargs.transform_keys(&:to_s)]
    if name == "provider" && block
      provider = child("provider:#{args.first}")
      block.call(provider, provider.child("override"))
    end
    nil
  end
end

module Vagrant
  CONFIG = Recorder.new

  def self.configure(_version)
    yield CONFIG
  end
end

load ARGV.fetch(0)
puts JSON.generate(Vagrant::CONFIG.to_h)
